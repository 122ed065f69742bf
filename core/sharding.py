"""Data parallelism for the streaming data stages (synthesize, filter): shares, shards and the merge.

Under ``torchrun`` / ``accelerate launch`` every process reads the same input stream and takes every
``W``-th record still to do (``rank``, ``rank + W``, ...), so no process needs the whole list in
memory and all of them agree on the split without talking. Each process appends its results to
its own shard (``triplets.rank1.jsonl``) and, once all are done, the main process merges the shards
and whatever the main file already held into the main file **in input order**, by id: the merged
file equals a single-process run's, whatever the number of processes, and a rerun resumes from
any mix of shards and main file (another process count included). The merge keeps only byte
offsets in memory, not records.

With one process (no launcher) nothing here imports accelerate or torch.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


class World:
    """This process's place among the data-parallel processes (one process: rank 0 of 1)."""

    def __init__(self) -> None:
        self._state = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from .evaluation.distributed import process_state

            self._state = process_state()  # also makes "cuda" mean this process's own GPU
        self.rank = self._state.process_index if self._state else 0
        self.size = self._state.num_processes if self._state else 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self._state is not None:
            self._state.wait_for_everyone()

    def mine(self, items: Iterable[T]) -> Iterator[T]:
        """This process's share of ``items``: every ``size``-th one, from position ``rank``."""
        if self.size == 1:
            yield from items
            return
        for position, item in enumerate(items):
            if position % self.size == self.rank:
                yield item

    def output(self, path: Path) -> Path:
        """Where this process appends: the file itself with one process, else its rank's shard."""
        return path if self.size == 1 else shard_path(path, self.rank)


def shard_path(path: Path, rank: int) -> Path:
    return path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def shards(path: Path) -> list[Path]:
    """The rank shards of ``path`` that exist (from this run or an interrupted one)."""
    return sorted(path.parent.glob(f"{path.stem}.rank*{path.suffix}"))


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


def exchange_stats(folder: Path, world: "World", stats: dict) -> dict:
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
