"""Open and closed VQA scores (SLAKE, PathVQA, VQA-RAD).

Legacy (as the paper's numbers were computed):
- open: both sides normalised twice (so up to 64 periods go); recall counts, for each distinct
  ground-truth word present in the prediction, how often the PREDICTION holds it, so repeating a
  correct word raises the score; 0 when either side is empty after normalisation;
- closed: the prediction must contain "yes" or "no" as a substring ("nodule" passes) and the label
  as a substring.

Strict (fixes those):
- open: exact match of the normalised strings (normalised once, no 32-period cap), 1 or 0;
- closed: for a yes/no label, the first "yes"/"no" WORD of the prediction must equal it; for any
  other closed label (VQA-RAD has a few, e.g. "left"), its words must appear as a contiguous run.
"""
from __future__ import annotations

from collections import Counter

from .normalize import normalize_answer

_YES_NO = ("yes", "no")


def open_recall_legacy(prediction: str, label: str) -> float:
    pred = Counter(normalize_answer(normalize_answer(prediction)).split())
    gold = Counter(normalize_answer(normalize_answer(label)).split())
    if not pred or not gold:
        return 0.0
    found = sum(pred[word] for word in gold if word in pred)
    missed = sum(count for word, count in gold.items() if word not in pred)
    return found / (found + missed)


def closed_accuracy_legacy(prediction: str, label: str) -> float:
    pred = normalize_answer(prediction)
    gold = normalize_answer(label)
    return float(("yes" in pred or "no" in pred) and gold in pred)


def open_exact_strict(prediction: str, label: str) -> float:
    gold = normalize_answer(label, period_limit=None)
    return float(bool(gold) and normalize_answer(prediction, period_limit=None) == gold)


def closed_accuracy_strict(prediction: str, label: str) -> float:
    words = normalize_answer(prediction, period_limit=None).split()
    gold = normalize_answer(label, period_limit=None).split()
    if not gold:
        return 0.0
    if gold in (["yes"], ["no"]):
        first = next((word for word in words if word in _YES_NO), None)
        return float(first == gold[0])
    n = len(gold)
    return float(any(words[i:i + n] == gold for i in range(len(words) - n + 1)))
