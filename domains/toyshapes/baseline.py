"""The text-only baseline: answering the benchmark from the question alone.

A model that cannot see the image can at best give, for each kind of question, the answer that
is right most often. ``text_only_baseline`` computes exactly that upper bound: for every group of
questions with the same family and phrasing (the ``family`` and ``template`` fields of the
benchmark rows; the asked-about word of a yes/no question is drawn independently of its answer,
so it tells nothing), it answers every question with the group's most frequent label, and scores
those answers with the benchmark's own scorers. The benchmark is built so that this stays at
chance level (answers balanced per family): a model that scores well above it reads the image.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from ..scoring import get_scorer

#: Which scorer rules each benchmark file follows.
SCORED_AS = {"vqa.jsonl": "vqa_rad", "choice.jsonl": "pmc_vqa"}


def majority_predictions(rows: list[dict]) -> list[dict]:
    """Each row as a scorer record whose prediction is its (family, template) group's most
    frequent label (ties: the label that sorts first)."""
    groups: dict[tuple, Counter] = defaultdict(Counter)
    for row in rows:
        groups[(row["family"], row.get("template"))][row["label"]] += 1
    best = {key: sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for key, counts in groups.items()}
    return [{**row, "prediction": best[(row["family"], row.get("template"))]} for row in rows]


def text_only_baseline(benchmark: str | Path) -> dict:
    """Scores of the majority-per-question-type answers on a world's ``benchmark/`` folder:
    ``{file: {scorer: {metric: value ×100, n_metric: count}}}`` for ``vqa.jsonl`` and ``choice.jsonl``."""
    folder = Path(getattr(benchmark, "benchmark", benchmark))
    result = {}
    for name, rules in SCORED_AS.items():
        rows = [json.loads(line) for line in (folder / name).read_text().splitlines() if line.strip()]
        records = majority_predictions(rows)
        result[name] = {}
        for scorer in ("legacy", "strict"):
            judge = get_scorer(rules, scorer)
            result[name][scorer] = judge.aggregate([judge.score_sample(r, i) for i, r in enumerate(records)])
    return result
