"""Batches that waste little padding, reproducible per (seed, epoch) so a resumed run continues
exactly where it stopped."""
from __future__ import annotations

import random
from typing import Sequence


def epoch_batches(lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int,
                  group_by_length: bool = True) -> list[list[int]]:
    """The batches of one epoch, as lists of sample indices.

    With ``group_by_length`` the samples are sorted by length (ties broken by a seeded shuffle) and
    cut into batches, then the batch order is shuffled: neighbours in a batch have nearly equal
    lengths, so padding is small, while the order of batches stays random. Without it, the samples
    are shuffled and cut (what a plain random sampler gives).
    """
    rng = random.Random(f"{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if group_by_length:
        order.sort(key=lambda i: lengths[i])  # stable: equal lengths keep the shuffled order
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


def padding_fraction(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of the padded batch tensors that is padding."""
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    real = sum(lengths[i] for b in batches for i in b)
    return 0.0 if padded == 0 else 1.0 - real / padded


def real_tokens(batch: dict) -> int:
    """The tokens of a batch that are not padding (a packed batch has none)."""
    mask = batch.get("attention_mask")
    return int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())


def shard(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This process's share of the batches; every process gets the same number (the last few
    batches are reused to even out, as distributed samplers do)."""
    if world == 1:
        return batches
    per_rank = -(-len(batches) // world)
    padded = batches + batches[: per_rank * world - len(batches)]
    return padded[rank::world]
