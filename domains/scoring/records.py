"""Read a JSONL prediction file, failing early with the file and line of a bad record."""
from __future__ import annotations

import json
import os

from .scorer import PMC_LETTERS, VQA_BENCHMARKS, canonical_benchmark


def required_fields(benchmark: str) -> tuple[str, ...]:
    key = canonical_benchmark(benchmark)
    if key in VQA_BENCHMARKS:
        return ("prediction", "label", "answer_type")
    if key == "pmc_vqa":
        return ("prediction", "label", *PMC_LETTERS)
    return ("prediction", "label")


def read_prediction_file(path: str | os.PathLike, benchmark: str,
                         fields: tuple[str, ...] | None = None) -> list[dict]:
    """One JSON object per line (blank lines skipped); raises ValueError naming `path:line`.

    ``fields``: the fields every record needs (default: what `benchmark`'s scorer reads; give
    them for a benchmark these scorers do not know, e.g. a plugin's).
    """
    fields = fields or required_fields(benchmark)
    records = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{os.fspath(path)}, line {line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: invalid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
            missing = [field for field in fields if field not in record]
            if missing:
                raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
            kind = record.get("answer_type")
            if "answer_type" in fields and str(kind).upper() not in ("OPEN", "CLOSED"):
                raise ValueError(f"{where}: answer_type must be OPEN or CLOSED, got {kind!r}")
            records.append(record)
    return records
