"""Shards and their merge, for every stage that spreads work over processes (synthesize, filter,
evaluate; who takes what is ``adamllm.distributed.World``).

Each process appends its results to its own shard (``triplets.rank1.jsonl``,
``predictions.rank1.jsonl``, ``rejected.rank1.jsonl``) and, once all are done, the main process
merges the shards and whatever the main file already held into the main file **in input order**,
by id: the merged file equals a single-process run's, whatever the number of processes, and a
rerun resumes from any mix of shards and main file (another process count included). The merge
keeps only byte offsets in memory, not records. Rejected records are folded the same way for
every stage (``fold_shards``).
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from .distributed import World, shard_path


def shards(path: Path) -> list[Path]:
    """The rank shards of ``path`` that exist (from this run or an interrupted one)."""
    return sorted(path.parent.glob(f"{path.stem}.rank*{path.suffix}"))


def fold_shards(path: Path) -> Iterator[dict]:
    """The records of ``path``'s rank shards, in rank order (a torn last line is skipped), each
    shard deleted once read: how every stage folds its processes' ``rejected.rank<N>.jsonl``
    into its ``rejected.jsonl``."""
    from .io import iter_records

    for shard in shards(path):
        for _, record in iter_records(shard, tolerant=True):
            if isinstance(record, dict):
                yield record
        shard.unlink(missing_ok=True)


def remove_shards(path: Path) -> None:
    for shard in shards(path):
        shard.unlink(missing_ok=True)


def merge_in_order(path: Path, ids: Iterable[str], always: bool = False) -> int:
    """Rewrite ``path`` with every record of ``path`` and its shards, one line per id, in the order
    of ``ids`` (the input order; ids with no record are skipped, the first record of an id wins),
    then delete the shards. A no-op when there are no shards, unless ``always`` (records appended
    out of order to ``path`` itself). Returns the number of records."""
    parts = shards(path)
    if not parts and not always:
        return -1
    sources = ([path] if path.exists() else []) + parts
    where: dict[str, tuple[int, int, int]] = {}
    for number, source in enumerate(sources):
        with source.open("rb") as handle:
            offset = 0
            for line in handle:
                try:
                    key = str(json.loads(line)["id"])
                except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
                    key = None  # a torn last line of a killed process
                if key is not None and line.endswith(b"\n"):
                    where.setdefault(key, (number, offset, len(line)))
                offset += len(line)
    from .io import temp_path

    tmp = temp_path(path)
    written = 0
    with _open_all(sources) as handles, tmp.open("wb") as out:
        for key in ids:
            spot = where.pop(key, None)
            if spot is None:
                continue
            number, offset, length = spot
            handles[number].seek(offset)
            out.write(handles[number].read(length))
            written += 1
    os.replace(tmp, path)
    for part in parts:
        part.unlink(missing_ok=True)
    return written


def merge_stats(per_process: list[dict]) -> dict:
    """One stats dict from every process's component stats (in rank order): counters (ints) are
    summed, lists concatenated, dicts merged the same way, values every process agrees on kept;
    what differs otherwise (a rate, seconds) is left out, and each process's own dict is kept
    under ``per_process``."""
    if len(per_process) == 1:
        return dict(per_process[0])
    return {**_merged(per_process), "per_process": [dict(stats) for stats in per_process]}


_MISSING = object()


def _merged(dicts: list[dict]) -> dict:
    out = {}
    for key in dict.fromkeys(k for d in dicts for k in d):
        value = _merge_values([d[key] for d in dicts if key in d])
        if value is not _MISSING:
            out[key] = value
    return out


def _merge_values(values: list):
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return sum(values)
    if all(isinstance(v, list) for v in values):
        return [item for v in values for item in v]
    if all(isinstance(v, dict) for v in values):
        return _merged(values)
    return values[0] if all(v == values[0] for v in values) else _MISSING


def exchange_stats(folder: Path, world: World, stats: dict) -> dict:
    """Every process's ``stats`` merged (``merge_stats``) on the main process, through one file per
    rank in ``folder`` (no collective: the gloo/nccl group may not pickle); other processes get
    their own back. Call it on every process at the same point: it holds a barrier."""
    if world.size == 1:
        return dict(stats)
    path = folder / "component_stats.json"
    shard_path(path, world.rank).write_text(json.dumps(stats), encoding="utf-8")
    world.barrier()
    if not world.is_main:
        return dict(stats)
    parts = [shard_path(path, rank) for rank in range(world.size)]
    merged = merge_stats([json.loads(p.read_text(encoding="utf-8")) for p in parts])
    for part in parts:
        part.unlink(missing_ok=True)
    return merged


@contextmanager
def _open_all(paths: list[Path]):
    handles = [p.open("rb") for p in paths]
    try:
        yield handles
    finally:
        for handle in handles:
            handle.close()
