"""Length-grouped batches: every sample once, little padding, reproducible per epoch, even shards."""
import random

from adamllm.plugins.sft.batching import epoch_batches, padding_fraction, shard


def lengths(n=400, seed=0):
    rng = random.Random(seed)
    return [rng.randint(76, 800) for _ in range(n)]


def test_each_sample_once_and_reproducible():
    ls = lengths()
    batches = epoch_batches(ls, 8, seed=1, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(ls)))
    assert batches == epoch_batches(ls, 8, seed=1, epoch=0)
    assert batches != epoch_batches(ls, 8, seed=1, epoch=1)


def test_grouping_cuts_padding():
    ls = lengths()
    grouped = padding_fraction(ls, epoch_batches(ls, 8, seed=0, epoch=0, group_by_length=True))
    random_ = padding_fraction(ls, epoch_batches(ls, 8, seed=0, epoch=0, group_by_length=False))
    assert grouped < 0.02 < 0.3 < random_


def test_padding_fraction_by_hand():
    assert padding_fraction([2, 4, 3, 3], [[0, 1], [2, 3]]) == 1 - 12 / 14


def test_shards_are_even_and_cover_everything():
    batches = [[i] for i in range(7)]
    parts = [shard(batches, r, 2) for r in range(2)]
    assert len(parts[0]) == len(parts[1]) == 4
    assert {b[0] for p in parts for b in p} == set(range(7))
