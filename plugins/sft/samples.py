"""What a run trains on, prepared before step 1 in one of two ways.

* ``encode_ahead`` (the default): every record encoded once (or read from the encoded-set cache),
  too-long and bad records dropped and quarantined before training, each sample's length known
  (length grouping, the padding fraction);
* ``streamed`` (``streaming: true``): nothing read or encoded; each batch's records when it is
  built (``streaming.py``), bad ones quarantined as the batches meet them (``DroppedWhileTraining``).

Both give a ``Prepared``: a function from sample ids to a collated batch, the lengths (None when
streamed), the sample ids of each stage and the summary's first fields.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from adamllm.io import DataError

from . import encode_cache
from .streaming import FAILED, REJECTED, InMemoryRecords, StreamedBatches, StreamedRecords


class TrainerError(RuntimeError):
    pass


@dataclass
class Prepared:
    make_batch: Callable[[list[int]], dict]  # sample ids to a collated batch
    lengths: list[int] | None                # tokens of each sample (None: streamed, unknown before step 1)
    stage_indices: list[Sequence[int]]       # the sample ids of each stage
    summary: dict[str, Any]


#: From this many records on, encoding before step 1 shows a progress bar (about a second and up).
ENCODING_BAR_FROM = 1000
#: From this many on, the bar also says that ``streaming`` would start training at once (a minute and up).
STREAMING_HINT_FROM = 50_000


def encode_ahead(config, adapter, records: Sequence[dict], collate, out: Path, *, image_root, quarantine,
                 content_folder, main_process: bool) -> Prepared:
    """Every record encoded before step 1 (or read from the encoded-set cache); bad ones dropped
    and quarantined; no trainable sample at all is an error."""
    import time

    started = time.time()
    check = None if config.image_check == "processor" else config.image_check
    key = encode_cache.cache_key(adapter, records, policy=config.label_policy, image_root=image_root,
                                 image_check=check, content_folder=content_folder or out) \
        if config.encode_cache else None
    encoded = encode_cache.load(out / encode_cache.FOLDER, key) if key else None
    from_cache = encoded is not None
    if encoded is None:
        encoded = adapter.encode_all(_encoding_bar(records, main_process), config.label_policy,
                                     image_root=image_root, image_check=check)
        if key and main_process:
            encode_cache.save(out / encode_cache.FOLDER, key, encoded)
    if quarantine is not None:
        for index, reason, message in encoded.rejected:
            record = records[index]
            quarantine.reject(record.get("_where") or f"record {record.get('id', index)}", message,
                              kind=reason, record_id=record.get("id"))
    if not encoded.samples:
        raise TrainerError(f"no trainable sample among {len(records)} records (dropped: {dict(encoded.dropped)}; "
                           f"{'; '.join(encoded.problems[:3])})")
    samples = encoded.samples
    summary: dict[str, Any] = {"records": len(records), "samples": len(samples),
                               "dropped": dict(encoded.dropped), "drop_examples": encoded.problems[:5],
                               **(quarantine.stats() if quarantine is not None else {}),
                               "encode_seconds": round(time.time() - started, 3), "image_check": config.image_check,
                               "image_tokens_from_sizes": encoded.header_encoded,
                               "encoded_from_cache": from_cache, "streaming": False}
    return Prepared(lambda ids: collate([samples[i] for i in ids]),
                    [int(s["input_ids"].shape[0]) for s in samples],
                    split_stages([records[i] for i in encoded.indices], config.two_stage), summary)


def streamed(config, adapter, records, collate, *, image_root, quarantine) -> Prepared:
    """Nothing read or encoded before step 1 (two_stage: one pass reading each record's stage, an
    unreadable record set aside then); a batch's records when it is built."""
    store = records if isinstance(records, (StreamedRecords, InMemoryRecords)) else InMemoryRecords(records)
    if not len(store):
        raise TrainerError("no records to train on")
    dropped: Counter = Counter()
    if config.two_stage:
        kept, stages = [], []
        for i in range(len(store)):
            try:
                record = store.get(i)
            except DataError as exc:
                where = store.where(i)
                dropped["bad_record"] += 1
                if quarantine is not None:
                    quarantine.reject(where, str(exc).removeprefix(f"{where}: "))
                continue
            kept.append(i)
            stages.append({"stage": record.get("stage"), "id": record.get("id")})
        stage_indices = [[kept[j] for j in stage] for stage in split_stages(stages, True)]
    else:
        stage_indices = [range(len(store))]
    summary: dict[str, Any] = {"records": len(store), "samples": len(store) - sum(dropped.values()),
                               "dropped": dict(dropped), "encode_seconds": 0.0, "image_check": "decode",
                               "image_tokens_from_sizes": False, "encoded_from_cache": False, "streaming": True}
    return Prepared(StreamedBatches(store, adapter, config.label_policy, image_root, collate), None,
                    stage_indices, summary)


def split_stages(records: Sequence[dict], two_stage: bool) -> list[list[int]]:
    """The positions of the records of each stage: one stage, or captions (``stage: 1``) then tasks."""
    if not two_stage:
        return [list(range(len(records)))]
    stages = [[i for i, r in enumerate(records) if r.get("stage") == s] for s in (1, 2)]
    missing = [str(r.get("id")) for r in records if r.get("stage") not in (1, 2)]
    if missing:
        raise TrainerError(f"two_stage needs 'stage': 1 or 2 on every record; missing on records {missing[:5]}")
    if not all(stages):
        raise TrainerError("two_stage needs records of both stage 1 (captions) and stage 2 (tasks)")
    return stages


class DroppedWhileTraining:
    """The records streamed batches set aside: each quarantined and counted once (a record met
    again in a later epoch is not counted again)."""

    def __init__(self, quarantine) -> None:
        self.quarantine = quarantine
        self.counts: Counter = Counter()
        self._seen: set[tuple[int, str]] = set()

    def take(self, batch: dict) -> dict:
        """``batch`` without what it carried for this; a batch that could not be built stops the
        run with its reason."""
        for index, where, reason, message, record_id in batch.pop(REJECTED, None) or ():
            if (index, reason) in self._seen:
                continue
            self._seen.add((index, reason))
            self.counts[reason] += 1
            if self.quarantine is not None:
                self.quarantine.reject(where, message, kind=reason, record_id=record_id)
        if FAILED in batch:
            raise TrainerError(batch[FAILED])
        return batch


def _encoding_bar(records: Sequence[dict], enabled: bool):
    """``records``, iterated under an "encode" bar with its ETA when there are enough to wait for."""
    if len(records) < ENCODING_BAR_FROM or not enabled:
        return records
    from tqdm.auto import tqdm

    desc = "encode (trainer streaming: true skips this)" if len(records) >= STREAMING_HINT_FROM else "encode"
    return tqdm(records, total=len(records), desc=desc, unit="rec", dynamic_ncols=True, mininterval=1.0)
