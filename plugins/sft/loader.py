"""The batches of one epoch, collated ahead of the step in worker processes.

``collate`` is where each batch's images are decoded and run through the processor (encoding kept
only tokens and image references). Done in the training process it sits on every step's path; a
``torch.utils.data.DataLoader`` with workers prepares the next batches while the model computes.
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
    """Map-style dataset: item ``k`` is the ``k``-th micro-batch, collated."""

    def __init__(self, micro: list[list[int]], samples: Sequence[dict], indices: Sequence[int],
                 collate: Callable[[list[dict]], dict]) -> None:
        self.micro, self.samples, self.indices, self.collate = micro, samples, indices, collate

    def __len__(self) -> int:
        return len(self.micro)

    def __getitem__(self, k: int) -> dict:
        return self.collate([self.samples[self.indices[i]] for i in self.micro[k]])


def _one_thread(_worker: int) -> None:
    import torch

    torch.set_num_threads(1)


def group_batches(groups: Sequence[Sequence[list[int]]], first: int, samples: Sequence[dict],
                  indices: Sequence[int], collate: Callable[[list[dict]], dict],
                  workers: int, prefetch: int = 2) -> Iterator[Iterable[dict]]:
    """For each accumulation group from ``first`` on, its micro-batches collated, in order.
    ``workers`` 0: collated here, each micro-batch when the step asks for it (one in memory)."""
    if workers <= 0:
        for group in groups[first:]:
            yield (collate([samples[indices[i]] for i in ids]) for ids in group)
        return
    from torch.utils.data import DataLoader

    micro = [ids for group in groups[first:] for ids in group]
    if not micro:
        return
    loader = DataLoader(_MicroBatches(micro, samples, indices, collate), batch_size=None, shuffle=False,
                        num_workers=workers, prefetch_factor=prefetch, worker_init_fn=_one_thread,
                        multiprocessing_context="fork" if os.name == "posix" else None)
    batches = iter(loader)
    try:
        for group in groups[first:]:
            yield [next(batches) for _ in group]
    finally:
        del batches  # shuts the workers down, also when the loop stops early


__all__ = ["default_workers", "group_batches"]
