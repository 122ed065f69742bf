"""Agreement of a filter's verdicts with human labels (the ``gold: FILE`` option of every filter).

A gold file is JSONL or a JSON array (read by ``adamllm.io``, so errors name file and line) of
records with an ``id`` (a triplet's id) and a ``label`` (``yes`` / ``no`` / ``open``, any case);
other fields (the triplet itself, a note) are ignored. An id may appear once.

``agreement`` compares over the ids that have both a gold label and a verdict: ``agreement`` is
the share of them whose verdict equals the gold label; ``by_label[L]`` the same over the items
whose gold label is L (its ``n``, ``agree`` and ``rate``, None when n is 0); ``confusion[gold][
predicted]`` counts every (gold, verdict) pair, ``other`` being a column; ``missing`` counts gold
ids without a verdict (not judged, or quarantined), ``compared`` those with one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from adamllm.paths import LocalPath, base_dir
from adamllm.records import Verdict
from adamllm.stages import StageError

from .parsing import LABELS, OTHER


class GoldLabel(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    label: str

    @field_validator("label")
    @classmethod
    def _a_label(cls, value: str) -> str:
        label = value.strip().lower()
        if label not in LABELS:
            raise ValueError(f"label must be one of {', '.join(LABELS)}, got {value!r}")
        return label


class GoldOption(BaseModel):
    """The option every built-in filter has: a file of human labels to measure agreement against."""

    gold: Optional[LocalPath] = Field(None, description="JSONL or JSON array of {id, label: yes|no|open}; "
                                                        "stats.json then reports agreement and a confusion table.")

    @field_validator("gold")
    @classmethod
    def _exists(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        if value is not None and base_dir(info) is not None and not Path(value).is_file():
            raise ValueError(f"no such gold file: {value} (paths are relative to the config file)")
        return value


def read_gold(path: str | Path) -> dict[str, str]:
    """Gold id -> label; a ``StageError`` naming file and line for a bad record or a repeated id."""
    from adamllm.io import DataError, iter_records

    labels: dict[str, str] = {}
    try:
        for where, record in iter_records(path, GoldLabel):
            if record.id in labels:
                raise StageError(f"{where}: gold id {record.id!r} appears more than once")
            labels[record.id] = record.label
    except DataError as exc:
        raise StageError(f"gold file: {exc}") from None
    if not labels:
        raise StageError(f"{path}: the gold file holds no labels")
    return labels


def agreement(gold: dict[str, str], verdicts: Iterable[Verdict]) -> dict[str, Any]:
    """The numbers described in the module docstring."""
    predicted = {v.id: v.verdict for v in verdicts}
    columns = (*LABELS, OTHER)
    confusion = {g: {p: 0 for p in columns} for g in LABELS}
    for item, label in gold.items():
        if item in predicted:
            confusion[label][predicted[item]] += 1
    compared = sum(sum(row.values()) for row in confusion.values())
    agree = sum(confusion[label][label] for label in LABELS)
    by_label = {}
    for label in LABELS:
        n = sum(confusion[label].values())
        by_label[label] = {"n": n, "agree": confusion[label][label],
                           "rate": round(confusion[label][label] / n, 4) if n else None}
    return {"labels": len(gold), "compared": compared, "missing": len(gold) - compared,
            "agreement": round(agree / compared, 4) if compared else None,
            "by_label": by_label, "confusion": confusion}


class GoldSummary:
    """Mixin of the built-in filters: ``summarize`` (the stage calls it once, over every verdict)
    reports agreement with the ``gold`` file when the options name one; the file is read when the
    filter is built, so a bad file stops the stage before any judging."""

    _gold: Optional[dict[str, str]] = None
    _gold_path: Optional[str] = None

    def _load_gold(self, path: Optional[str]) -> None:
        self._gold_path = path
        self._gold = read_gold(path) if path is not None else None

    def summarize(self, verdicts: list[Verdict]) -> dict[str, Any]:
        if self._gold is None:
            return {}
        return {"gold": {"file": self._gold_path, **agreement(self._gold, verdicts)}}
