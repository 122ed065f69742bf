"""One bad-input policy for every stage: skip the record into ``rejected.jsonl``, or stop.

``on_bad_record: skip`` (the default) sets a bad record aside: it is appended to
``OUT/<stage>/rejected.jsonl`` with where it came from (file and line, or record id) and why, and
counted by reason in the stage's stats, and the stage goes on. At the scale the method runs at
(hundreds of thousands of pairs) one corrupt image must not end a GPU-day run, and nothing is
dropped silently. ``on_bad_record: error`` stops at the first bad record with the same one-line
message, before any finished work is lost (finished records are already on disk).

A stage in which *every* record was rejected has not done its work: that is an error either way.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Literal

from .io import DataError
from .layout import REJECTED

OnBadRecord = Literal["skip", "error"]


class Quarantine:
    """The rejected records of one stage (or one benchmark), by reason."""

    def __init__(self, path: str | Path | None, policy: OnBadRecord = "skip") -> None:
        self.path = Path(path) if path is not None else None
        self.policy = policy
        self.counts: Counter = Counter()
        self._handle = None
        self._seen: set[tuple[str, str]] = set()
        if self.path is not None and self.path.exists():  # a resumed stage: what it already set aside
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self._seen.add((entry["where"], entry["reason"]))
                    self.counts[entry.get("kind", "bad_record")] += 1
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a torn last line

    def reject(self, where: str, reason: str, *, kind: str = "bad_record", record_id: str | None = None) -> None:
        """Set one record aside (``kind`` is what stats count: ``bad_image``, ``too_long``, ...)."""
        if self.policy == "error":
            raise DataError(f"{where}: {reason} (on_bad_record: error; use on_bad_record: skip to set such "
                            f"records aside in {REJECTED})")
        if (where, reason) in self._seen:
            return  # rejected by the interrupted run already, and counted
        self._seen.add((where, reason))
        self.counts[kind] += 1
        if self.path is None:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            from .io import _drop_torn_tail

            _drop_torn_tail(self.path)
            self._handle = self.path.open("a", encoding="utf-8")
        entry = {"where": where, "id": record_id, "kind": kind, "reason": reason}
        line = json.dumps(entry, ensure_ascii=False)
        if not line.isascii():
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate in an id or path: escaped, still valid JSON
                line = json.dumps(entry)
        self._handle.write(line + "\n")
        self._handle.flush()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def stats(self) -> dict:
        return {"rejected": self.total, "rejected_by_kind": dict(self.counts),
                **({"rejected_file": str(self.path)} if self.total and self.path else {})}

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "Quarantine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
