"""ROUGE-L F between a generated recipe and the reference (Recipe1M).

Legacy: the `rouge` 1.0.1 package, as the paper used it. It splits sentences at every ".",
treats each sentence as a set, is case-sensitive, and raises on an empty (or all-period) text;
any exception scores 0.
Strict: `rouge_score`'s rougeL F (one token sequence, lower-cased, no stemming); an empty text
scores 0 without an exception.
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _legacy_rouge():
    from rouge import Rouge
    return Rouge()


@lru_cache(maxsize=1)
def _strict_rouge():
    from rouge_score import rouge_scorer
    return rouge_scorer.RougeScorer(["rougeL"])


def rouge_l_legacy(prediction: str, reference: str) -> float:
    try:
        return float(_legacy_rouge().get_scores(prediction, reference)[0]["rouge-l"]["f"])
    except Exception:  # noqa: BLE001 - the legacy metric counts any failure as 0
        return 0.0


def rouge_l_strict(prediction: str, reference: str) -> float:
    return float(_strict_rouge().score(reference, prediction)["rougeL"].fmeasure)
