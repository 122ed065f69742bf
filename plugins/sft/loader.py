"""The batches of one epoch, collated ahead of the step in worker processes.

Building a batch is where its images are decoded and run through the processor (encoding kept
only tokens and image references; with ``streaming`` the records are read and encoded there too).
Done in the training process it sits on every step's path; a ``torch.utils.data.DataLoader``
with workers prepares the next batches while the model computes.
Collation is deterministic, so the batches, their order and the losses are the same with and
without workers (a test). Workers are forked from the training process (the samples are shared,
not copied or pickled) and run one torch thread each.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable, Iterator, Sequence


def default_workers() -> int:
    """Half the CPU cores minus one, at most 4: 0 on a 2-core machine, 4 on a GPU node."""
    return max(0, min(4, (os.cpu_count() or 1) // 2 - 1))


class _MicroBatches:
    """Map-style dataset: item ``k`` is the ``k``-th micro-batch, built."""

    def __init__(self, micro: list[list[int]], make_batch: Callable[[list[int]], dict]) -> None:
        self.micro, self.make_batch = micro, make_batch

    def __len__(self) -> int:
        return len(self.micro)

    def __getitem__(self, k: int) -> dict:
        return self.make_batch(self.micro[k])


def _one_thread(_worker: int) -> None:
    import torch

    torch.set_num_threads(1)


def group_batches(groups: Sequence[Sequence[list[int]]], first: int, make_batch: Callable[[list[int]], dict],
                  workers: int, prefetch: int = 2) -> Iterator[Iterable[dict]]:
    """For each accumulation group from ``first`` on, its micro-batches built by ``make_batch``
    (sample ids to a collated batch), in order. ``workers`` 0: built here, each micro-batch when
    the step asks for it (one in memory)."""
    if workers <= 0:
        for group in groups[first:]:
            yield (make_batch(ids) for ids in group)
        return
    from torch.utils.data import DataLoader

    micro = [ids for group in groups[first:] for ids in group]
    if not micro:
        return
    loader = DataLoader(_MicroBatches(micro, make_batch), batch_size=None, shuffle=False,
                        num_workers=workers, prefetch_factor=prefetch, worker_init_fn=_one_thread,
                        multiprocessing_context="fork" if os.name == "posix" else None)
    batches = iter(loader)
    try:
        for group in groups[first:]:
            yield [next(batches) for _ in group]
    finally:
        del batches  # shuts the workers down, also when the loop stops early


__all__ = ["default_workers", "group_batches"]
