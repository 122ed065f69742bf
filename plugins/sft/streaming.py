"""``streaming: true``: records read and encoded per batch, nothing per record before step 1.

The default trainer reads every record into memory and encodes it before the first step (lengths
for length grouping, bad records quarantined up front). At the paper's scale (500K records) that
is minutes to hours before step 1 and memory that grows with the dataset. Streamed:

* ``StreamedRecords`` reads a record when its batch is built: a JSONL file through a byte-offset
  index (``adamllm.jsonl_index``: 20 bytes per record), a dataset folder or hub dataset through
  ``datasets`` (memory-mapped Arrow). Each record is checked as ``load_records`` checks it. A
  ``.json`` array is parsed whole (convert it to JSONL to stream it).
* ``StreamedBatches`` encodes a batch's records (``adapter.encode``: tokens and pixels at once)
  and collates them, in the training process or in the loader's workers, so each rank encodes
  only its own batches. A record that cannot be used (malformed, too long, unreadable image) is
  reported back with the batch, quarantined once by the main process, and replaced in its batch
  by the next usable record, so a batch never comes out empty (an empty batch on one rank would
  stall the others' gradient sync); when no record can be used the run stops saying why.

Batches are the same as the default trainer's when no record is dropped (their order depends
only on the number of records), so the losses are too (a test). Not available: length grouping
(it needs every length before step 1) and duplicate-id checks (they need every id).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from adamllm.backbone import BadSample, SampleTooLong
from adamllm.io import DataError, _is_array_file, iter_records
from adamllm.jsonl_index import ChangedFile, JsonlIndex

from .data import (_check, _SiblingImages, check_image_root, dataset_source, load_records, open_dataset,
                   refuse_dataset_options)

#: Consecutive unusable records after which a batch gives up (the data, not one record, is broken).
MAX_CONSECUTIVE_BAD = 1000
REJECTED = "_rejected"  # the batch key carrying its rejected records to the main process
FAILED = "_failed"  # the batch key saying why no batch could be built (raised by the main process)


class StreamedRecords:
    """Training records by index, read and checked on demand. ``get(i)`` returns the record, or
    raises ``DataError`` naming its file and line (or dataset row)."""

    def __init__(self, source: str | Path, *, limit: int | None = None, image_root: str | Path | None = None,
                 config: str | None = None, data_files: Any = None, split: str | None = None,
                 note: Callable[[str], None] | None = None, on_error: Callable[[str, str], None] | None = None):
        path = Path(source).expanduser()
        self._index: JsonlIndex | None = None
        self._rows: Sequence[Any] | None = None
        self._dataset = None
        if path.is_file():
            refuse_dataset_options(path, config, data_files, split)
            self.root = Path(image_root) if image_root else path.parent
            if _is_array_file(path):
                rows = list(iter_records(path, on_error=on_error))  # an array: parsed whole
                self._rows = rows[:limit] if limit else rows
            else:
                self._index = JsonlIndex(path, limit=limit)
        else:
            self._require_image_root = not path.exists() and image_root is None  # a hub dataset
            self._dataset_source = dataset_source(path, source)
            self._dataset = open_dataset(self._dataset_source, config, data_files, split)
            if limit:
                self._dataset = self._dataset.select(range(min(limit, len(self._dataset))))
            self.root = Path(image_root) if image_root else (path if path.is_dir() else None)
        self._images = _SiblingImages(self.root, note) if self.root is not None and image_root is None else None

    def __len__(self) -> int:
        if self._index is not None:
            return len(self._index)
        return len(self._rows) if self._rows is not None else len(self._dataset)

    def where(self, i: int) -> str:
        if self._index is not None:
            return self._index.where(i)
        if self._rows is not None:
            return self._rows[i][0]
        return f"{self._dataset_source}[{i}]"

    def get(self, i: int) -> dict:
        if self._index is not None:
            where, record = self.where(i), self._index.record(i)
            default_id = where.rpartition(":")[2]
        elif self._rows is not None:
            (where, record), default_id = self._rows[i], str(i)
        else:
            where, record, default_id = self.where(i), dict(self._dataset[i]), str(i)
            if self._require_image_root:
                check_image_root(where, self._dataset_source, record)
        if self._images is not None and isinstance(record, dict):
            record = self._images.resolve(record)
        checked = _check(record, where)
        checked.setdefault("id", default_id)
        checked["_where"] = where
        return checked


def training_records(source: str | Path, *, streaming: bool, quarantine=None, **options: Any):
    """``(records, image folder)`` for the trainer: loaded whole (``load_records``), or with
    ``streaming`` a ``StreamedRecords`` read batch by batch. ``options``: ``limit``, ``image_root``,
    ``config``, ``data_files``, ``split``, ``note``."""
    if not streaming:
        return load_records(source, quarantine=quarantine, **options)
    records = StreamedRecords(source, on_error=quarantine.reject if quarantine is not None else None, **options)
    return records, records.root


class InMemoryRecords:
    """Records already in memory (a list), by index: what ``train`` streams when given a list."""

    def __init__(self, records: Sequence[dict]) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def where(self, i: int) -> str:
        record = self.records[i]
        return record.get("_where") or f"record {record.get('id', i)}"

    def get(self, i: int) -> dict:
        return self.records[i]


class StreamedBatches:
    """``ids`` (record indices) to a collated batch: each record encoded now; an unusable one
    replaced by the next usable record, and listed under ``REJECTED`` as
    ``(index, where, reason, message, record_id)``."""

    def __init__(self, records, adapter, policy: str, image_root, collate: Callable[[list[dict]], dict]) -> None:
        self.records, self.adapter, self.policy, self.image_root = records, adapter, policy, image_root
        self.collate = collate

    def __call__(self, ids: Sequence[int]) -> dict:
        samples, rejected = [], []
        try:
            for index in ids:
                samples.append(self._usable_from(int(index), rejected))
        except (NoUsableRecords, ChangedFile) as exc:  # said by the main process, as one line
            return {REJECTED: rejected, FAILED: str(exc)}
        batch = self.collate(samples)
        batch[REJECTED] = rejected
        return batch

    def _usable_from(self, index: int, rejected: list) -> dict:
        n = len(self.records)
        for step in range(min(n, MAX_CONSECUTIVE_BAD)):
            i = (index + step) % n
            try:
                record = self.records.get(i)
                return self.adapter.encode(record["messages"], list(record.get("images") or []), self.policy,
                                           image_root=self.image_root)
            except ChangedFile:
                raise
            except DataError as exc:
                where = self.records.where(i)
                rejected.append((i, where, "bad_record", str(exc).removeprefix(f"{where}: "), None))
            except SampleTooLong as exc:
                rejected.append((i, self.records.where(i), "too_long", str(exc), record.get("id")))
            except BadSample as exc:
                rejected.append((i, self.records.where(i), "bad_record", str(exc), record.get("id")))
        first = rejected[-min(n, MAX_CONSECUTIVE_BAD)]
        scope = f"none of the {n} records" if n <= MAX_CONSECUTIVE_BAD else \
            f"{MAX_CONSECUTIVE_BAD} consecutive records from {first[1]} on"
        raise NoUsableRecords(f"{scope} can be trained on; the first: {first[1]}: {first[3]}")


class NoUsableRecords(RuntimeError):
    pass
