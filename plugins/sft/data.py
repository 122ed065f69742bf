"""Training records: ShareGPT-style conversations with image paths, from a file or a hub dataset.

Works for our composed mix and for the released mixes (``AdaptLLM/biomed-visual-instructions``,
``AdaptLLM/food-visual-instructions``): ``{"messages": [...], "images": ["path"]}``. A structurally
bad record is an error naming the file and line; a record that cannot be encoded (too long,
placeholders and images disagree, unreadable image) is dropped and counted by the adapter.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from adamllm.io import DataError, iter_jsonl

ROLES = {"system", "user", "assistant"}


def _check(record: Any, where: str) -> dict:
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected an object with 'messages' and 'images'")
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: 'messages' must be a non-empty list")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES or not isinstance(message.get("content"), str):
            raise DataError(f"{where}: messages[{i}] needs a role in {sorted(ROLES)} and string content")
    images = record.get("images") or []
    if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
        raise DataError(f"{where}: 'images' must be a list of paths")
    if "stage" in record and record["stage"] not in (1, 2):
        raise DataError(f"{where}: 'stage' must be 1 (captions) or 2 (tasks)")
    return {**record, "images": images}


def load_records(source: str | Path, *, limit: int | None = None, split: str = "train") -> tuple[list[dict], Path | None]:
    """Records and the folder their image paths are relative to (None for a hub dataset)."""
    path = Path(source).expanduser()
    records: list[dict] = []
    if path.is_file():
        for number, record in iter_jsonl(path):
            checked = _check(record, f"{path}:{number}")
            checked.setdefault("id", str(number))
            records.append(checked)
            if limit and len(records) >= limit:
                break
        return records, path.parent
    if path.exists():
        raise DataError(f"{path}: expected a JSONL file of conversations")
    from datasets import load_dataset  # a hub dataset id: images still need image_root

    dataset = load_dataset(str(source), split=split)
    for index, record in enumerate(dataset):
        checked = _check(dict(record), f"{source}[{index}]")
        checked.setdefault("id", str(index))
        records.append(checked)
        if limit and len(records) >= limit:
            break
    return records, None
