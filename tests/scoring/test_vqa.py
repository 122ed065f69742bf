"""Open recall and closed yes/no accuracy, legacy vs strict."""
import pytest

from adamllm.domains.scoring.vqa import (closed_accuracy_legacy, closed_accuracy_strict,
                                         open_exact_strict, open_recall_legacy)


def test_open_recall_counts_prediction_multiplicity():
    # gold {lung:1, heart:1}; "lung" found 3 times in the prediction, "heart" missed once:
    # 3 / (3 + 1) = 0.75, above the plain 1/2 word ratio.
    assert open_recall_legacy("lung lung lung", "lung heart") == 0.75
    # gold {lung:2}, prediction holds lung once: found 1, missed 0 -> 1.0.
    assert open_recall_legacy("lung", "lung lung") == 1.0
    # gold {left:1, lung:1}; only "lung" found once: 1 / (1 + 1).
    assert open_recall_legacy("the lung", "left lung") == 0.5


def test_open_recall_normalises_both_sides():
    assert open_recall_legacy("Two", "2") == 1.0
    assert open_recall_legacy("a liver.", "The Liver") == 1.0


def test_open_recall_empty_is_zero():
    assert open_recall_legacy("", "liver") == 0.0
    assert open_recall_legacy("the", "liver") == 0.0  # only an article: empty after normalising
    assert open_recall_legacy("liver", "") == 0.0


def test_open_recall_normalises_twice():
    # 40 glued periods: pass 1 leaves 8, pass 2 removes them -> "x" == "x".
    assert open_recall_legacy("." * 40 + "x", "x") == 1.0
    # 70 periods: 32 + 32 removed, 6 remain glued to "x" -> no gold word found.
    assert open_recall_legacy("." * 70 + "x", "x") == 0.0


def test_open_strict_is_exact_match():
    assert open_exact_strict("The Liver.", "liver") == 1.0
    assert open_exact_strict("liver and lung", "liver") == 0.0
    assert open_exact_strict("lung lung lung", "lung heart") == 0.0
    assert open_exact_strict("", "liver") == 0.0
    # No 32-period cap in strict: all 70 go.
    assert open_exact_strict("." * 70 + "x", "x") == 1.0


@pytest.mark.parametrize("prediction, label, legacy, strict", [
    ("Nodule", "no", 1.0, 0.0),               # substring gate and label substring; no yes/no word
    ("Yes, it is.", "yes", 1.0, 1.0),
    ("It is present", "yes", 0.0, 0.0),       # no yes/no at all
    ("no, yes it is", "yes", 1.0, 0.0),       # strict takes the first yes/no word
    ("I think yes", "yes", 1.0, 1.0),         # ... which need not be the first word
    ("", "no", 0.0, 0.0),                     # empty prediction
    ("not left", "left", 1.0, 1.0),           # "no" in "not" opens the legacy gate
    ("left side", "left", 0.0, 1.0),          # legacy needs yes/no; strict matches the word run
    ("the right one", "left", 0.0, 0.0),
])
def test_closed(prediction, label, legacy, strict):
    assert closed_accuracy_legacy(prediction, label) == legacy
    assert closed_accuracy_strict(prediction, label) == strict
