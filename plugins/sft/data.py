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
from adamllm.quarantine import Quarantine
from adamllm.records import TrainingExample

def _check(record: Any, where: str) -> dict:
    """The record validated as an ``adamllm.records.TrainingExample`` (a missing or null
    ``images`` is none) with at least one non-empty assistant reply, back as the plain dict the
    trainer reads. Raises ``DataError`` naming ``where``."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected an object with 'messages' and 'images'")
    try:
        example = TrainingExample.model_validate({**record, "images": record.get("images") or []})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise DataError(f"{where}: {problems}") from None
    replies = [m.content for m in example.messages if m.role == "assistant"]
    if not replies:
        raise DataError(f"{where}: no assistant turn: nothing to train on")
    if not all(reply.strip() for reply in replies):
        raise DataError(f"{where}: an empty assistant reply (an empty caption?)")
    return example.model_dump(mode="json", exclude_none=True)


def _accept(records: list[dict], seen: set[str], record: Any, where: str, default_id: str, quarantine) -> None:
    try:
        checked = _check(record, where)
    except DataError as exc:
        quarantine.reject(where, str(exc).removeprefix(f"{where}: "),
                          record_id=str(record.get("id")) if isinstance(record, dict) and "id" in record else None)
        return
    checked.setdefault("id", default_id)
    if checked["id"] in seen:
        quarantine.reject(where, f"id {checked['id']!r} appears more than once; the first is kept",
                          kind="duplicate_id", record_id=str(checked["id"]))
        return
    seen.add(checked["id"])
    checked["_where"] = where
    records.append(checked)


def load_records(source: str | Path, *, limit: int | None = None, split: str = "train",
                 quarantine=None, image_root: str | Path | None = None) -> tuple[list[dict], Path | None]:
    """Records and the folder their image paths are confined to (``image_root``, else the file's
    folder; for a hub dataset ``image_root``, which records with image paths need).

    A bad record (malformed, no assistant reply, an empty one, a repeated id) goes to
    ``quarantine`` (``adamllm.quarantine.Quarantine``) or, without one, is a ``DataError``. Each
    kept record has ``_where`` (file and line), for the records the backbone later drops.
    """
    path = Path(source).expanduser()
    records: list[dict] = []
    seen: set[str] = set()
    quarantine = quarantine if quarantine is not None else Quarantine(None, "error")
    reject = quarantine.reject
    if path.is_file():  # JSONL, or a JSON array (.json); a record without id gets its line or position
        array = path.suffix.lower() == ".json"
        for index, (where, record) in enumerate(iter_records(path, on_error=reject)):
            _accept(records, seen, record, where, str(index) if array else where.rpartition(":")[2], quarantine)
            if limit and len(records) >= limit:
                break
        return records, Path(image_root) if image_root else path.parent
    if path.exists():
        raise DataError(f"{path}: expected a JSONL (or JSON array) file of conversations")
    from datasets import load_dataset  # a hub dataset id: images still need image_root

    try:
        dataset = load_dataset(str(source), split=split)
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, no such split...
        raise DataError(f"cannot load hub dataset {str(source)!r} (split {split!r}): {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}; for local data give a JSONL or JSON file") from None
    for index, record in enumerate(dataset):
        record = dict(record)
        if image_root is None and any(isinstance(i, str) for i in record.get("images") or []):
            raise DataError(f"{source}[{index}]: the records name image files; set the trainer's image_root "
                            f"to the folder that holds them")
        _accept(records, seen, record, f"{source}[{index}]", str(index), quarantine)
        if limit and len(records) >= limit:
            break
    return records, Path(image_root) if image_root else None
