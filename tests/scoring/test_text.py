"""Recipe1M ROUGE-L F: `rouge` 1.0.1 (legacy) vs `rouge_score` (strict)."""
import pytest

from adamllm.domains.scoring import get_scorer, score_records
from adamllm.domains.scoring.text import rouge_l_legacy, rouge_l_strict


@pytest.mark.parametrize("prediction", ["", "...", "."])
def test_legacy_scores_a_raising_prediction_zero(prediction):
    # `rouge` raises "Hypothesis is empty." for these: the legacy metric counts 0.
    assert rouge_l_legacy(prediction, "mix the flour") == 0.0


def test_strict_empty_prediction_is_zero():
    assert rouge_l_strict("", "mix the flour") == 0.0


def test_case():
    # Legacy is case-sensitive: LCS(The cat sat, the cat sat) = 2 of 3 tokens -> P = R = F = 2/3.
    assert rouge_l_legacy("The cat sat", "the cat sat") == pytest.approx(2 / 3, abs=1e-6)
    # Strict lower-cases: identical -> 1.
    assert rouge_l_strict("The cat sat", "the cat sat") == pytest.approx(1.0)


def test_strict_f():
    # LCS 3; P = 3/3, R = 3/6 -> F = 2 * 1 * 0.5 / 1.5 = 2/3.
    assert rouge_l_strict("the cat sat", "the cat sat on the mat") == pytest.approx(2 / 3)


def test_recipe1m_average():
    records = [
        {"prediction": "cat sat", "label": "cat sat"},   # legacy F = 1 (up to rouge's 1e-8)
        {"prediction": "", "label": "cat sat"},          # raises -> 0
    ]
    result = score_records("recipe1m", records)
    assert result["rouge_l_f"] == pytest.approx(50.0, abs=1e-4)
    assert result["n_rouge_l_f"] == 2
    assert get_scorer("recipe1m", "strict").metrics == ("rouge_l_f",)
