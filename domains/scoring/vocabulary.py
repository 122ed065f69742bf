"""Food vocabularies (package data) and vocabulary matching for Nutrition5K and FoodSeg103.

Matching works on the lower-cased text, longest name first, deleting each match before shorter
names are tried, so "egg tart" does not also count "egg". Legacy matches names as plain substrings
("steamed" counts "tea", "boiled" counts "oil") and deletes them outright; strict matches whole
words only and replaces a match with a space, so deleting it cannot glue its neighbours into a new
name. Vocabulary names are lower-cased too (FoodSeg103 has "French beans"); a name repeated in a
vocabulary maps to its last id; names of equal length are tried in vocabulary order.
Per-sample scores count over the id space with zero-division = 1: recall is 1 when the label is
empty, F1 is 1 when both sides are empty.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cached_property, lru_cache
from importlib import resources

FOOD101_FILE = "food101_name_to_label.json"
FOODSEG103_FILE = "foodseg103_id2label.json"
NUTRITION5K_FILE = "nutrition5k_ingredients.json"


def load_vocab_file(file_name: str):
    """The parsed JSON of one shipped vocabulary file."""
    data = resources.files(f"{__package__}.vocab").joinpath(file_name)
    return json.loads(data.read_text(encoding="utf-8"))


class Vocabulary:
    """Lower-cased names -> ids, with longest-first matching."""

    def __init__(self, title: str, pairs: Iterable[tuple[str, int]]):
        self.title = title
        self.name_to_id: dict[str, int] = {}
        for name, idx in pairs:  # later pairs overwrite: a repeated name keeps its last id
            self.name_to_id[name.lower()] = idx
        self._longest_first = sorted(self.name_to_id, key=len, reverse=True)

    @cached_property
    def _word_patterns(self) -> list[tuple[re.Pattern, int]]:
        return [(re.compile(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])"), self.name_to_id[name])
                for name in self._longest_first]

    def find(self, text: str, word_boundary: bool = False) -> set[int]:
        """Ids of the names found in `text` (see the module docstring for the two modes)."""
        text = text.lower()
        found = set()
        if word_boundary:
            for pattern, idx in self._word_patterns:
                text, hits = pattern.subn(" ", text)
                if hits:
                    found.add(idx)
            return found
        for name in self._longest_first:
            if name in text:
                found.add(self.name_to_id[name])
                text = text.replace(name, "")
        return found

    def label_ids(self, label) -> set[int]:
        """Ids of a label: a list of names, or one string of comma-separated names."""
        names = label.split(",") if isinstance(label, str) else list(label)
        ids = set()
        for name in names:
            key = str(name).strip().lower()
            if not key:
                continue
            if key not in self.name_to_id:
                raise ValueError(f"label name {name!r} is not in the {self.title} vocabulary")
            ids.add(self.name_to_id[key])
        return ids


@lru_cache(maxsize=1)
def food101_classes() -> tuple[str, ...]:
    """The 101 class names, with spaces, in label order 0..100."""
    name_to_label: Mapping[str, int] = load_vocab_file(FOOD101_FILE)
    return tuple(name.replace("_", " ") for name, _ in sorted(name_to_label.items(),
                                                               key=lambda item: item[1]))


@lru_cache(maxsize=1)
def foodseg103_vocab() -> Vocabulary:
    """Classes 1..102 only: 0 (background) and 103 (other ingredients) are outside the metric."""
    id2label = load_vocab_file(FOODSEG103_FILE)
    return Vocabulary("FoodSeg103", ((name, int(i)) for i, name in id2label.items()
                                     if 1 <= int(i) <= 102))


@lru_cache(maxsize=1)
def nutrition5k_vocab() -> Vocabulary:
    return Vocabulary("Nutrition5K", ((name, i) for i, name in
                                      enumerate(load_vocab_file(NUTRITION5K_FILE))))


def sample_recall(predicted: set[int], gold: set[int]) -> float:
    return len(predicted & gold) / len(gold) if gold else 1.0


def sample_f1(predicted: set[int], gold: set[int]) -> float:
    denominator = len(predicted) + len(gold)  # F1 = 2TP / (2TP + FP + FN)
    return 2 * len(predicted & gold) / denominator if denominator else 1.0
