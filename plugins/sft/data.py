"""Training records: ShareGPT-style conversations with image paths, from a file or a hub dataset.

Works for our composed mix and for the released mixes (``AdaptLLM/biomed-visual-instructions``,
``AdaptLLM/food-visual-instructions``): ``{"messages": [...], "images": ["path"]}``, one per line
(JSONL) or in a JSON array (``.json``). A structurally bad record is an error naming the file and
line; a record that cannot be encoded (too long, placeholders and images disagree, unreadable
image) is dropped and counted by the adapter.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adamllm.io import DataError, iter_records
from adamllm.records import TrainingExample

def _check(record: Any, where: str) -> dict:
    """The record validated as an ``adamllm.records.TrainingExample`` (a missing or null
    ``images`` is none), back as the plain dict the trainer reads."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected an object with 'messages' and 'images'")
    try:
        example = TrainingExample.model_validate({**record, "images": record.get("images") or []})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise DataError(f"{where}: {problems}") from None
    return example.model_dump(mode="json", exclude_none=True)


def load_records(source: str | Path, *, limit: int | None = None, split: str = "train") -> tuple[list[dict], Path | None]:
    """Records and the folder their image paths are relative to (None for a hub dataset)."""
    path = Path(source).expanduser()
    records: list[dict] = []
    if path.is_file():  # JSONL, or a JSON array (.json); a record without id gets its line or position
        array = path.suffix.lower() == ".json"
        for index, (where, record) in enumerate(iter_records(path)):
            checked = _check(record, where)
            checked.setdefault("id", str(index) if array else where.rpartition(":")[2])
            records.append(checked)
            if limit and len(records) >= limit:
                break
        return records, path.parent
    if path.exists():
        raise DataError(f"{path}: expected a JSONL (or JSON array) file of conversations")
    from datasets import load_dataset  # a hub dataset id: images still need image_root

    dataset = load_dataset(str(source), split=split)
    for index, record in enumerate(dataset):
        checked = _check(dict(record), f"{source}[{index}]")
        checked.setdefault("id", str(index))
        records.append(checked)
        if limit and len(records) >= limit:
            break
    return records, None
