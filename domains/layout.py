"""Read benchmark records in the public layout, from a local folder or a hub dataset.

The public benchmark copies (``AdaptLLM/biomed-VQA-benchmark``, ``AdaptLLM/food-VQA-benchmark``)
hold one record per question: ``image``, ``input`` (the prompt), ``label``, plus ``answer_type``
(OPEN/CLOSED) for the VQA sets and ``A``..``D`` for PMC-VQA. ``read_layout`` yields them from:

- a local **folder** (or one file in it): every ``*.jsonl`` and ``*.parquet`` file directly in it,
  in name order, or a folder written by ``datasets``' ``save_to_disk`` (``state.json`` + ``*.arrow``,
  the layout of the hub copies). ``image`` is a path relative to the folder (confined to it:
  ``../`` and absolute paths are refused), or an embedded image (``{"bytes": ..., "path": ...}`` as
  ``datasets`` writes parquet and arrow files, or raw bytes);
- a **hub dataset id** with a config name and split, through ``datasets.load_dataset``, used only
  when ``source`` is not an existing local path.

Images are not decoded here: a record's ``image`` becomes an absolute path or the encoded bytes
(see ``adamllm.benchmark.open_image``), so a 25 000-image benchmark does not sit decoded in memory.
Hub records must embed their images (bytes): a hub record naming a path on this machine is refused.
A bad record (a line that is not a JSON object, a missing field, an image reference that cannot be
used) raises ``DataError`` naming the file and line (JSONL, counted from 1) or row (parquet and
arrow, counted from 0 like dataset indexes); with ``on_error`` it is handed to
``on_error(where, reason)`` instead (a ``Quarantine``'s ``reject`` fits) and skipped, still taking
its place in the count of records (``index``, ``limit``), so the default ids of the others do not move.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from adamllm.io import DataError, PathEscapeError, iter_records, resolve_under

#: Fields every record of the public layout has.
REQUIRED_FIELDS = ("image", "input", "label")
LOCAL_SUFFIXES = (".jsonl", ".parquet")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class LayoutRecord:
    """One record: where it came from (for error messages), its fields and its image."""

    where: str
    index: int  # position in the source, counted from 0
    data: dict[str, Any]
    image: Any  # an absolute path (str) or encoded image bytes


def is_local(source: str | Path) -> bool:
    return Path(source).expanduser().exists()


def looks_like_hub_id(source: str) -> bool:
    return bool(_HUB_ID.match(str(source)))


def read_layout(
    source: str | Path,
    *,
    config_name: str | None = None,
    split: str = "test",
    limit: int | None = None,
    required: tuple[str, ...] = REQUIRED_FIELDS,
    revision: str | None = None,
    on_error: Callable[[str, str], None] | None = None,
) -> Iterator[LayoutRecord]:
    """Yield the records of ``source`` (a local folder or file, else a hub dataset id); a bad
    record raises ``DataError`` naming it, or with ``on_error`` is handed to it and skipped."""

    def bad(where: str, reason: str) -> None:
        if on_error is None:
            raise DataError(f"{where}: {reason}")
        on_error(where, reason)

    if is_local(source):
        rows = _local_rows(Path(source).expanduser())
    elif looks_like_hub_id(str(source)):
        rows = _hub_rows(str(source), config_name, split, revision)
    else:
        raise DataError(f"benchmark source {str(source)!r} is neither a local folder or file nor a hub dataset id")
    for index, (where, root, data) in enumerate(rows):
        if limit is not None and index >= limit:
            break
        if isinstance(data, _Unreadable):
            bad(where, data.reason)
            continue
        missing = [name for name in required if data.get(name) is None]
        if missing:
            bad(where, f"missing field(s) {', '.join(missing)}")
            continue
        try:
            image = _image(data.get("image"), root)
        except _BadImageRef as exc:
            bad(where, str(exc))
            continue
        yield LayoutRecord(where, index, data, image)


class _Unreadable:
    """A line ``iter_records`` could not read (invalid JSON, not an object): a bad record in its place."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _BadImageRef(ValueError):
    """A record's ``image`` that cannot be used (the reason, without the record's place)."""


# -- local folders -------------------------------------------------------------------------
def _local_rows(path: Path) -> Iterator[tuple[str, Path | None, dict]]:
    root = path if path.is_dir() else path.parent
    if path.is_dir() and (path / "state.json").exists() and any(path.glob("*.arrow")):
        yield from _arrow_rows(path)
        return
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in LOCAL_SUFFIXES)
    if not files:
        raise DataError(f"{path}: no *.jsonl or *.parquet files (nor a datasets save_to_disk folder) in it")
    for file in files:
        if file.suffix == ".jsonl":
            unreadable: list[tuple[str, str]] = []
            for where, record in iter_records(file, on_error=lambda w, m: unreadable.append((w, m))):
                while unreadable:  # the lines before this one that could not be read, in order
                    bad_where, reason = unreadable.pop(0)
                    yield bad_where, root, _Unreadable(reason)
                yield where, root, record
            for bad_where, reason in unreadable:
                yield bad_where, root, _Unreadable(reason)
        elif file.suffix == ".parquet":
            yield from _parquet_rows(file, root)
        else:
            raise DataError(f"{file}: unsupported file type (use .jsonl or .parquet)")


def _parquet_rows(file: Path, root: Path) -> Iterator[tuple[str, Path, dict]]:
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(file)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise DataError(f"{file}: not a readable parquet file: {exc}") from None
    row = 0
    for batch in table.iter_batches(batch_size=256):
        for record in batch.to_pylist():
            yield f"{file} row {row}", root, record
            row += 1


def _arrow_rows(folder: Path) -> Iterator[tuple[str, Path, dict]]:
    import datasets

    dataset = datasets.load_from_disk(str(folder))
    if not isinstance(dataset, datasets.Dataset):
        raise DataError(f"{folder}: holds a DatasetDict ({', '.join(dataset)}); point source at one of its folders")
    yield from _dataset_rows(dataset, str(folder), folder)


# -- hub datasets --------------------------------------------------------------------------
def _hub_rows(dataset_id: str, config_name: str | None, split: str,
              revision: str | None) -> Iterator[tuple[str, None, dict]]:
    import datasets

    try:
        dataset = datasets.load_dataset(dataset_id, config_name, split=split, revision=revision)
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, unknown config...
        raise DataError(
            f"cannot load hub dataset {dataset_id!r} (config {config_name!r}, split {split!r}): {exc}; "
            f"to use local files, set the benchmark's source to a folder"
        ) from None
    yield from _dataset_rows(dataset, f"{dataset_id}[{config_name}/{split}]", None)


def _dataset_rows(dataset, name: str, root: Path | None) -> Iterator[tuple[str, Path | None, dict]]:
    import datasets

    if isinstance(dataset.features.get("image"), datasets.Image):
        dataset = dataset.cast_column("image", datasets.Image(decode=False))  # keep the encoded bytes
    for row, record in enumerate(dataset):
        yield f"{name} row {row}", root, record


# -- images --------------------------------------------------------------------------------
def _image(value: Any, root: Path | None) -> Any:
    """A record's image as a path under ``root`` or encoded bytes; ``root`` None (a hub record):
    bytes only, since a hub record naming a path would read any file of this machine."""
    if isinstance(value, list):
        if len(value) != 1:
            raise _BadImageRef(f"expected one image, got {len(value)}")
        value = value[0]
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        value = value.get("path")
        if not value:
            raise _BadImageRef("image has neither bytes nor a path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        if not value:
            raise _BadImageRef("image bytes are empty (0 bytes)")
        return bytes(value)
    if not isinstance(value, str):
        # a decoded PIL image (a dataset loaded elsewhere); keep it as is
        if hasattr(value, "convert"):
            return value
        raise _BadImageRef(f"image must be a path or image bytes, got {type(value).__name__}")
    if root is None:
        raise _BadImageRef(f"image {value!r} is a path, but hub records must embed the image bytes")
    try:
        path = resolve_under(root, value)
    except PathEscapeError as exc:
        raise _BadImageRef(str(exc)) from None
    if not path.is_file():
        raise _BadImageRef(f"image {value!r} not found under {root}")
    return str(path)
