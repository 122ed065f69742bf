"""Multiple-choice parsing (PMC-VQA letters, Food101 numbers) and its seeded fallback."""
import pytest

from adamllm.domains.scoring import get_scorer, score_records
from adamllm.domains.scoring.choice import parse_choice, sample_rng

OPTIONS = {"A": "Cerebellum", "B": "Brain stem", "C": "Liver", "D": "Heart"}


class _NoRandom:
    """Stands in for the generator: the fallback shows up as "RANDOM"."""

    def choice(self, seq):
        return "RANDOM"


@pytest.mark.parametrize("response, expected", [
    ("(B)", "B"),
    ("The answer is (B), not (C).", "C"),     # several brackets: the last wins
    ("(A) B", "A"),                           # brackets beat a later bare letter
    ("I pick A or D", "D"),                   # bare letters: the last wins
    ("B.", "B"),                              # "." stripped, then " B "
    ("'B'.", "B"),                            # "." then "'" stripped
    ("It is the liver", "C"),                 # option text, case-insensitive
    ("Liver, not heart", "D"),                # option texts: the last-starting wins
    ("B. ", "RANDOM"),                        # whitespace not stripped: " B.  " has no " B "
    ("'B.'", "RANDOM"),                       # "." is stripped before "'": "B." remains
    ("", "RANDOM"),                           # empty prediction
])
def test_parse_choice(response, expected):
    assert parse_choice(response, OPTIONS, _NoRandom()) == expected


def test_equal_starts_go_to_the_earlier_option():
    options = {"A": "brain", "B": "brain stem"}
    assert parse_choice("It is the brain stem", options, _NoRandom()) == "A"
    assert parse_choice("It is the brain stem", {"A": "brain stem", "B": "brain"},
                        _NoRandom()) == "A"


def test_option_text_needs_more_than_5_padded_chars():
    options = {"A": "ear", "B": "eye"}
    assert parse_choice("ear", options, _NoRandom()) == "RANDOM"  # " ear " is 5 chars
    assert parse_choice("ears", options, _NoRandom()) == "A"      # " ears " is 6


def test_seeded_fallback_is_reproducible_and_order_independent():
    record = {"id": "q1", "prediction": "no idea", "label": "A", **OPTIONS}
    judge = get_scorer("pmc_vqa", seed=3)
    first = judge.score_sample(record, index=0)
    assert judge.score_sample(record, index=9) == first  # the id, not the position, seeds it
    rng_a, rng_b = sample_rng(3, record, 0), sample_rng(3, record, 5)
    assert rng_a.random() == rng_b.random()
    picks = [parse_choice("no idea", OPTIONS, sample_rng(3, {}, i)) for i in range(40)]
    assert picks == [parse_choice("no idea", OPTIONS, sample_rng(3, {}, i)) for i in range(40)]
    assert set(picks) <= set(OPTIONS) and len(set(picks)) > 1


def test_pmc_vqa_order_independent_aggregate():
    records = [{"id": f"q{i}", "prediction": "unsure", "label": "B", **OPTIONS} for i in range(30)]
    forward = score_records("pmc_vqa", records, seed=1)
    assert forward == score_records("pmc_vqa", records[::-1], seed=1)
    assert forward["n_accuracy"] == 30


def test_pmc_vqa_labels():
    judge = get_scorer("pmc_vqa")
    assert judge.score_sample({"prediction": "(C)", "label": "c", **OPTIONS}).value == 1.0
    assert judge.score_sample({"prediction": "(C)", "label": "Liver", **OPTIONS}).value == 1.0
    assert judge.score_sample({"prediction": "(C)", "label": "A", **OPTIONS}).value == 0.0
    with pytest.raises(ValueError, match="PMC-VQA label"):
        judge.score_sample({"prediction": "(C)", "label": "kidney", **OPTIONS})


@pytest.mark.parametrize("prediction, label, value", [
    ("(12)", "cannoli", 1.0),                      # 12 = cannoli
    ("The answer is 3", "beef_carpaccio", 1.0),    # bare number; underscore label accepted
    ("The answer is 3", "Beef Carpaccio", 1.0),
    ("I think (10), no, (1)", "baby back ribs", 1.0),  # "(10)" does not contain "(1)"; last wins
    ("I think (1), no, (10)", "baby back ribs", 0.0),  # 10 = bruschetta
    ("This looks like apple pie", 0, 1.0),         # option text; label as an index
    ("apple pie or baklava", "2", 1.0),            # last option text wins: 2 = baklava
    ("apple pie or baklava", "apple pie", 0.0),
])
def test_food101(prediction, label, value):
    for scorer in ("legacy", "strict"):
        record = {"prediction": prediction, "label": label}
        assert get_scorer("food101", scorer).score_sample(record).value == value


def test_food101_unknown_label():
    with pytest.raises(ValueError, match="Food101 label"):
        get_scorer("food101").score_sample({"prediction": "(1)", "label": "sushi roll"})
