"""Read a prediction file (JSONL or a JSON array), failing early with the file and line of a bad record."""
from __future__ import annotations

import os
from pathlib import Path

from adamllm.io import DataError, iter_records

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
    """The records of ``path`` (``adamllm.io.iter_records``: one JSON object per line, blank lines
    skipped, or a JSON array); raises ValueError naming `path, line N` (a missing field, a
    prediction that is not a string, a bad ``answer_type``).

    ``fields``: the fields every record needs (default: what `benchmark`'s scorer reads; give
    them for a benchmark these scorers do not know, e.g. a plugin's).
    """
    fields = fields or required_fields(benchmark)
    records = []
    try:
        for where, record in iter_records(path):
            missing = [field for field in fields if field not in record]
            if missing:
                raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
            if "prediction" in fields and not isinstance(record["prediction"], str):
                shown = "null" if record["prediction"] is None else type(record["prediction"]).__name__
                raise DataError(f"{where}: prediction must be a string, got {shown}")
            kind = record.get("answer_type")
            if "answer_type" in fields and str(kind).upper() not in ("OPEN", "CLOSED"):
                raise DataError(f"{where}: answer_type must be OPEN or CLOSED, got {kind!r}")
            records.append(record)
    except DataError as error:
        raise DataError(_line_form(path, str(error))) from None
    return records


def _line_form(path: str | os.PathLike, message: str) -> str:
    """``adamllm.io``'s "FILE:N: ..." as this reader has always written it: "FILE, line N: ..."."""
    prefix = f"{Path(path)}:"
    number, sep, rest = message[len(prefix):].partition(":") if message.startswith(prefix) else ("", "", "")
    return f"{os.fspath(path)}, line {number}:{rest}" if sep and number.isdigit() else message
