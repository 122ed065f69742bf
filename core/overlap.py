"""Training images that are also benchmark images: exact copies (file hash) and near-duplicates
(64-bit perceptual hash within a Hamming distance).

Why: a benchmark image that was trained on makes that benchmark's score measure memory, not the
domain skill; a crawl of domain figures (PubMed Central, recipe sites) easily contains the very
figures a benchmark was cut from, and nothing downstream notices. A resized or re-encoded copy has
another file hash, so the file hash alone is not enough; the DCT hash (``imagehash.phash``) of a
resized or re-compressed copy stays within a few bits of the original.

A flat image (one colour, or nearly) has a meaningless perceptual hash (every flat image hashes
alike), so flat images are compared by file hash only and counted apart.

``imagehash`` is an optional dependency (``pip install 'adamllm[inspect]'``), imported on use.
Hashes are cached by file content in ``cache`` (a JSONL file), so a rerun only decodes new images.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

#: Default largest Hamming distance (of 64 bits) that counts as a near-duplicate: a resized or
#: re-encoded copy lands at 0-4, unrelated photos around 32.
DEFAULT_THRESHOLD = 4
MAX_THRESHOLD = 32
HASH_BITS = 64
#: An image whose grey levels (at 32 x 32) span at most this many values is flat.
FLAT_RANGE = 4
INSTALL_HINT = "pip install 'adamllm[inspect]' (or pip install imagehash)"


class OverlapUnavailable(RuntimeError):
    """The overlap check cannot run here (``imagehash`` is not installed)."""


def require_imagehash() -> Any:
    try:
        import imagehash
    except ModuleNotFoundError:
        raise OverlapUnavailable(f"the overlap check needs the imagehash library: {INSTALL_HINT}") from None
    return imagehash


@dataclass
class ImageRef:
    """An image to compare: ``label`` is what the card shows (a path, or a benchmark sample),
    ``source`` what is hashed and shown (a path, encoded bytes or a PIL image), ``group`` "train"
    or the benchmark's name."""

    label: str
    source: Any
    group: str
    samples: list[str] = field(default_factory=list)  # benchmark sample ids showing this image


@dataclass
class Hashed:
    ref: ImageRef
    sha256: str | None = None
    phash: int | None = None
    flat: bool = False
    error: str | None = None


@dataclass
class Match:
    train: ImageRef
    benchmark: ImageRef
    distance: int
    exact: bool

    def as_dict(self) -> dict:
        return {"train": self.train.label, "benchmark": self.benchmark.group, "benchmark_image": self.benchmark.label,
                "benchmark_samples": self.benchmark.samples[:20], "distance": self.distance, "exact": self.exact}


def _content(source: Any) -> bytes | None:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        return Path(source).read_bytes()
    return None  # a decoded PIL image: no file to hash


def perceptual(source: Any) -> tuple[int, bool]:
    """``(64-bit DCT hash, flat)`` of an image (path, bytes or PIL image); ``BadImage`` if unusable."""
    imagehash = require_imagehash()
    from .images import load_rgb

    rgb = load_rgb(source)
    low, high = rgb.convert("L").resize((32, 32)).getextrema()
    return int(str(imagehash.phash(rgb)), 16), high - low <= FLAT_RANGE


def _perceptual_or_error(source: Any) -> tuple[int | None, bool, str | None]:
    try:
        value, flat = perceptual(source)
    except (OSError, ValueError) as exc:
        return None, False, str(exc)
    return value, flat, None


class HashCache:
    """sha256 of a file's bytes -> its perceptual hash and flatness, appended as JSON lines."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.known: dict[str, tuple[int, bool]] = {}
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self.known[entry["sha256"]] = (int(entry["phash"], 16), bool(entry["flat"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line

    def add(self, entries: dict[str, tuple[int, bool]]) -> None:
        self.known.update(entries)
        if self.path is None or not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            for sha, (value, flat) in entries.items():
                handle.write(json.dumps({"sha256": sha, "phash": f"{value:016x}", "flat": flat}) + "\n")


def hash_images(refs: list[ImageRef], cache: HashCache | None = None, workers: int = 1) -> list[Hashed]:
    """Every image's file hash and perceptual hash (decoded in ``workers`` processes when many)."""
    require_imagehash()
    cache = cache or HashCache(None)
    hashed = [Hashed(ref) for ref in refs]
    todo: list[Hashed] = []
    for item in hashed:
        try:
            data = _content(item.ref.source)
        except OSError as exc:
            item.error = f"{item.ref.label}: {exc.strerror or exc}"
            continue
        item.sha256 = hashlib.sha256(data).hexdigest() if data is not None else None
        if item.sha256 in cache.known:
            item.phash, item.flat = cache.known[item.sha256]
        else:
            todo.append(item)
    sources = [item.ref.source for item in todo]
    if workers > 1 and len(todo) >= 64:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_perceptual_or_error, sources, chunksize=32))
    else:
        results = [_perceptual_or_error(source) for source in sources]
    fresh = {}
    for item, (value, flat, error) in zip(todo, results):
        item.phash, item.flat, item.error = value, flat, error
        if error is None and item.sha256 is not None:
            fresh[item.sha256] = (value, flat)
    cache.add(fresh)
    return hashed


def _chunks(threshold: int) -> list[tuple[int, int]]:
    """``threshold + 1`` disjoint bit ranges covering the hash: two hashes within ``threshold``
    bits agree exactly on at least one of them (pigeonhole), so each range is an exact index."""
    count = threshold + 1
    bounds = [round(i * HASH_BITS / count) for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(count)]


def _part(value: int, bits: tuple[int, int]) -> int:
    low, high = bits
    return (value >> low) & ((1 << (high - low)) - 1)


def find_matches(train: list[Hashed], benchmark: list[Hashed], threshold: int = DEFAULT_THRESHOLD) -> list[Match]:
    """Pairs (training image, benchmark image) with the same bytes, or (neither flat) perceptual
    hashes at most ``threshold`` bits apart; sorted by distance, then names."""
    if not 0 <= threshold <= MAX_THRESHOLD:
        raise ValueError(f"threshold must be between 0 and {MAX_THRESHOLD} bits, got {threshold}")
    by_sha: dict[str, list[int]] = defaultdict(list)
    for j, item in enumerate(benchmark):
        if item.sha256 is not None:
            by_sha[item.sha256].append(j)
    chunks = _chunks(threshold)
    index: list[dict[int, list[int]]] = [defaultdict(list) for _ in chunks]
    for j, item in enumerate(benchmark):
        if item.phash is not None and not item.flat:
            for c, bits in enumerate(chunks):
                index[c][_part(item.phash, bits)].append(j)
    found: dict[tuple[int, int], Match] = {}
    for i, item in enumerate(train):
        for j in by_sha.get(item.sha256, []) if item.sha256 is not None else []:
            other = benchmark[j]
            distance = (item.phash ^ other.phash).bit_count() if item.phash is not None and other.phash is not None else 0
            found[(i, j)] = Match(item.ref, other.ref, distance, True)
        if item.phash is None or item.flat:
            continue
        candidates = {j for c, bits in enumerate(chunks) for j in index[c].get(_part(item.phash, bits), ())}
        for j in candidates:
            if (i, j) in found:
                continue
            distance = (item.phash ^ benchmark[j].phash).bit_count()
            if distance <= threshold:
                found[(i, j)] = Match(item.ref, benchmark[j].ref, distance, False)
    return sorted(found.values(), key=lambda m: (m.distance, not m.exact, m.train.label, m.benchmark.group,
                                                 m.benchmark.label))


@dataclass
class OverlapResult:
    """What the card reports: how many images were compared, the matches, what could not be read."""

    threshold: int
    train: list[Hashed]
    benchmarks: dict[str, list[Hashed]]
    matches: list[Match]

    def as_dict(self, listed: int | None = None) -> dict:
        def unreadable(items: Iterable[Hashed]) -> int:
            return sum(1 for h in items if h.error is not None)

        flagged_train = {m.train.label for m in self.matches}
        per_benchmark = {}
        for name, items in self.benchmarks.items():
            mine = [m for m in self.matches if m.benchmark.group == name]
            per_benchmark[name] = {"images": len(items), "flat": sum(h.flat for h in items),
                                   "unreadable": unreadable(items),
                                   "images_matched": len({m.benchmark.label for m in mine}),
                                   "pairs": len(mine), "exact_pairs": sum(m.exact for m in mine)}
        matches = self.matches if listed is None else self.matches[:listed]
        return {
            "status": "checked",
            "threshold": self.threshold,
            "hash": "phash (64-bit DCT, imagehash) and sha256 of the file",
            "train_images": len(self.train),
            "train_flat": sum(h.flat for h in self.train),
            "train_unreadable": unreadable(self.train),
            "train_images_matched": len(flagged_train),
            "benchmark_images": sum(len(v) for v in self.benchmarks.values()),
            "benchmarks": per_benchmark,
            "pairs": len(self.matches),
            "exact_pairs": sum(m.exact for m in self.matches),
            "near_pairs": sum(not m.exact for m in self.matches),
            "matches": [m.as_dict() for m in matches],
            "errors": [h.error for h in [*self.train, *(h for v in self.benchmarks.values() for h in v)]
                       if h.error][:20],
        }


def check_overlap(train: list[ImageRef], benchmarks: dict[str, list[ImageRef]], *,
                  threshold: int = DEFAULT_THRESHOLD, cache: Path | None = None, workers: int = 1) -> OverlapResult:
    """Hash the training images and every benchmark's images, and pair up the duplicates."""
    store = HashCache(cache)
    train_hashed = hash_images(train, store, workers)
    hashed = {name: hash_images(refs, store, workers) for name, refs in benchmarks.items()}
    every = [h for items in hashed.values() for h in items]
    return OverlapResult(threshold, train_hashed, hashed, find_matches(train_hashed, every, threshold))
