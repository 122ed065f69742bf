"""The model-free filters: the ``lexical`` rule case by case, ``none``, and their contract suites."""
import pytest

from adamllm.plugins.filtering.simple import (
    KeepAllConfig,
    KeepAllFilter,
    LexicalConfig,
    LexicalFilter,
    content_words,
    lexical_verdict,
    words,
)
from adamllm.records import TaskTriplet
from adamllm.testing.stage_contract import FilterContract


def test_words_are_lower_cased_runs_of_letters_and_digits():
    assert words("Don't-stop, 3D! Café_au_lait") == ["don", "t", "stop", "3d", "café", "au", "lait"]
    assert content_words("The red square") == ["red", "square"]
    assert content_words("It is") == ["it", "is"]  # only stopwords: all words count
    assert content_words("?!") == []


@pytest.mark.parametrize("precise,informative,verdict,missing", [
    ("Red", "The square is painted red.", "yes", []),
    ("A red square", "It shows a square, coloured RED.", "yes", []),            # order, case, punctuation
    ("The left lung", "An opacity fills the right lung.", "no", ["left"]),
    ("cat", "Two cats sleep.", "no", ["cat"]),                                    # whole words only
    ("9", "Nine eggs sit in the carton.", "no", ["9"]),                           # numerals are not number words
    ("It is", "It is.", "yes", []),                                               # stopword-only answer
    ("It is", "Nothing here.", "no", ["it", "is"]),
    ("...", "Anything at all.", "no", []),                                        # no words at all
    ("Yes", "Yes, the wrist shows a fracture.", "yes", []),
])
def test_lexical_rule(precise, informative, verdict, missing):
    assert lexical_verdict(precise, informative) == (verdict, missing)


def triplet(i, precise, informative):
    return TaskTriplet(id=f"t{i}", image="x.png", instruction="Q?", precise=precise, informative=informative)


def test_lexical_filter_gives_verdicts_with_the_missing_words_as_raw():
    judged = LexicalFilter(LexicalConfig()).judge([triplet(0, "red", "A red box."), triplet(1, "blue cube", "A red box.")],
                                                  ctx=None)
    assert [(v.id, v.verdict, v.raw) for v in judged] == [("t0", "yes", ""), ("t1", "no", "missing: blue cube")]


def test_none_keeps_every_triplet():
    judged = KeepAllFilter(KeepAllConfig()).judge([triplet(0, "red", "blue"), triplet(1, "x", "y")], ctx=None)
    assert [(v.id, v.verdict, v.raw) for v in judged] == [("t0", "yes", ""), ("t1", "yes", "")]


class TestLexicalContract(FilterContract):
    component = "lexical"
    options = {}


class TestNoneContract(FilterContract):
    component = "none"
    options = {"batch_size": 3}
