"""The indicator rule's two tests: the reference's loose substring test (``legacy``) with its
quirks, and the whole-word test (``words``), and the three branches they choose between."""
import pytest

from adamllm.plugins.compose.indicators import INDICATORS, branch, last_piece, legacy_match, words_match


@pytest.mark.parametrize("text, legacy, words", [
    ("this is also visible", True, False),          # "also " holds "so "
    ("an iso standard", True, False),                # "iso " holds "so "
    ("therefore, it is a lesion", False, True),      # a comma, not a space, after "therefore"
    ("it is benign, so", False, True),               # a text-final "so" has no space after it
    ("so it is benign", True, True),
    ("the final diagnosis is x", True, True),
    ("finally it healed", False, False),             # "final" + "l", no space
    ("the results show a lesion", False, False),     # "results " does not hold "result "
    ("it could be a cyst", True, True),
    ("it could  be a cyst", False, True),            # two spaces: no "could be " substring; words allow any whitespace
    ("the so-called lesion", False, False),          # a hyphen is part of the word
    ("the answer's form", False, False),             # so is an apostrophe
    ("thus\nit is round", False, True),              # a newline is not the one space
    ("the correct answer", False, True),             # a text-final "answer"
    ("a round shape", False, False),
])
def test_legacy_and_words_tests(text, legacy, words):
    assert legacy_match(text) is legacy
    assert words_match(text) is words


def test_every_indicator_matches_both_ways_when_followed_by_a_space():
    assert INDICATORS == ("could be", "so", "thus", "therefore", "final", "answer", "result")
    for indicator in INDICATORS:
        assert legacy_match(f"x {indicator} y") and words_match(f"x {indicator} y")
        assert not legacy_match(f"x {indicator}") and words_match(f"x {indicator}")


def test_last_piece_splits_at_period_space_only():
    assert last_piece("  So it is a cyst. It has SHARP borders.  ") == "it has sharp borders."
    assert last_piece("The result is 2.5 cm wide.") == "the result is 2.5 cm wide."   # "2.5" is not split
    assert last_piece("It is round.Thus benign") == "it is round.thus benign"         # no space after the period
    assert last_piece("One. Two! So three") == "two! so three"                         # only ". " splits


@pytest.mark.parametrize("informative, precise, legacy, words", [
    # branch 1 by the loose match in the last piece
    ("The lesion has sharp borders. This is also visible on the left.", "Benign",
     "informative_only", "chain_of_thought"),
    # "Therefore," misses under legacy; the precise answer's "answer " decides
    ("The borders are sharp. Therefore, it is benign.", "The answer is benign", "informative_plus_precise",
     "informative_only"),
    # a final "so" misses under legacy; nothing in the precise answer
    ("The cells are round and evenly spaced, so", "Normal tissue.", "chain_of_thought", "informative_only"),
    # only the last piece counts: the first sentence's "So " is ignored
    ("So the lesion is large. It has sharp borders.", "Benign", "chain_of_thought", "chain_of_thought"),
    # the precise answer is only lower-cased: a final "so" there misses under legacy, matches as a word
    ("It has sharp borders.", "Benign, so", "chain_of_thought", "informative_plus_precise"),
    ("It has sharp borders.", "THUS benign", "informative_plus_precise", "informative_plus_precise"),
    # the precise answer is not stripped: its trailing space completes "so "
    ("It has sharp borders.", "benign so ", "informative_plus_precise", "informative_plus_precise"),
])
def test_branches(informative, precise, legacy, words):
    assert branch(informative, precise, "legacy") == legacy
    assert branch(informative, precise, "words") == words
