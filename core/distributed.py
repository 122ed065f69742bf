"""The one distributed module: which process this is, and each process's share of the work.

Every stage that spreads work over processes (synthesize, filter, evaluate; the trainer has
accelerate's own) asks ``World`` here: its rank, the number of processes, whether it is the main
process (the one writer of merged files, markers and reports), a barrier, its share of a stream of
items and the file it appends to. One split for all of them: every ``size``-th item still to do,
from position ``rank`` (round-robin), so no process needs the whole list and all agree on the split
without talking; the shards are named and merged by ``adamllm.sharding``.

With one process (no launcher) nothing here imports accelerate or torch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def process_state():
    """accelerate's process state. CPU processes need ``cpu=True`` to form a (gloo) group: set by
    ``ACCELERATE_USE_CPU=1`` (as ``Accelerator`` reads it), or implied by several processes and no GPU."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    cpu = parse_flag_from_env("ACCELERATE_USE_CPU")
    if not cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch

        cpu = not torch.cuda.is_available()
    return PartialState(cpu=cpu)


def per_process_device(device: str) -> str:
    """Under data parallelism each process loads its model on its own GPU (``cuda`` -> ``cuda:<local rank>``)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    state = process_state()
    if state.num_processes > 1 and device == "cuda":
        return f"cuda:{state.local_process_index}"
    return device


def launched_rank_zero() -> bool:
    """Whether this is the main process of a launch, read from the launcher's environment only
    (``RANK`` / ``LOCAL_RANK``, ``WORLD_SIZE``): for what must be decided before, or without, a
    process group (the output lock; the trainer's quarantine, before accelerate starts). True unless
    this is a non-zero rank of a multi-process launch."""
    env = os.environ
    if "RANK" not in env and "LOCAL_RANK" not in env:
        return True
    try:
        if int(env.get("WORLD_SIZE", "1")) <= 1:
            return True
        return int(env.get("RANK", env.get("LOCAL_RANK", "0"))) == 0
    except ValueError:
        return True


class World:
    """This process's place among the data-parallel processes (one process: rank 0 of 1)."""

    def __init__(self) -> None:
        self._state = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
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
    """Rank ``rank``'s shard of ``path``: ``triplets.jsonl`` -> ``triplets.rank1.jsonl``."""
    return path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


__all__ = ["World", "launched_rank_zero", "per_process_device", "process_state", "shard_path"]
