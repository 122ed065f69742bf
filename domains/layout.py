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
A bad record raises ``DataError`` naming the file and line (JSONL, counted from 1) or row (parquet
and arrow, counted from 0 like dataset indexes).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

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
) -> Iterator[LayoutRecord]:
    """Yield the records of ``source`` (a local folder or file, else a hub dataset id)."""
    if is_local(source):
        rows = _local_rows(Path(source).expanduser())
    elif looks_like_hub_id(str(source)):
        rows = _hub_rows(str(source), config_name, split, revision)
    else:
        raise DataError(f"benchmark source {str(source)!r} is neither a local folder or file nor a hub dataset id")
    for index, (where, root, data) in enumerate(rows):
        if limit is not None and index >= limit:
            break
        missing = [name for name in required if data.get(name) is None]
        if missing:
            raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
        yield LayoutRecord(where, index, data, _image(data.get("image"), root, where))


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
            for where, record in iter_records(file):
                yield where, root, record
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
def _image(value: Any, root: Path | None, where: str) -> Any:
    if isinstance(value, list):
        if len(value) != 1:
            raise DataError(f"{where}: expected one image, got {len(value)}")
        value = value[0]
    if isinstance(value, dict):
        if value.get("bytes"):
            return bytes(value["bytes"])
        value = value.get("path")
        if not value:
            raise DataError(f"{where}: image has neither bytes nor a path")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if not isinstance(value, str):
        # a decoded PIL image (a dataset loaded elsewhere); keep it as is
        if hasattr(value, "convert"):
            return value
        raise DataError(f"{where}: image must be a path or image bytes, got {type(value).__name__}")
    if root is None:
        path = Path(value)
        if not path.is_absolute() or not path.exists():
            raise DataError(f"{where}: image {value!r} has no bytes and is not an existing absolute path")
        return str(path)
    try:
        path = resolve_under(root, value)
    except PathEscapeError as exc:
        raise DataError(f"{where}: {exc}") from None
    if not path.is_file():
        raise DataError(f"{where}: image {value!r} not found under {root}")
    return str(path)
