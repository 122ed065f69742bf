"""Training images that are also benchmark images: exact copies (file hash) and possible
near-duplicates (perceptual hashes and colours that agree).

Why: a benchmark image that was trained on makes that benchmark's score measure memory, not the
domain skill; a crawl of domain figures (PubMed Central, recipe sites) easily contains the very
figures a benchmark was cut from, and nothing downstream notices. A resized or re-encoded copy has
another file hash, so the file hash alone is not enough.

A near match needs two signatures to agree, both cheap and both robust to resizing and
re-compression: the 64-bit DCT hash of the grey image (``imagehash.phash``) within ``threshold``
bits (a resized or re-compressed copy stays within a few bits; it is also the index that finds
candidates), and the colour layout, the mean colour of each cell of an 8 x 8 grid, within
``COLOUR_TOLERANCE`` levels in every cell and channel: a grey hash cannot tell a red shape from a
green one, and small drawings of one layout (the demo's 56 px scenes) share their grey structure.
Exact copies (the same bytes) are certain; a near match is a "possible near-duplicate" for a person
to look at (at 56 px a square and a hexagon of one colour in one place are near-duplicates to any
hash), and pairs whose grey hashes agree but whose colours do not are only counted.

A flat image (one colour, or nearly) has a meaningless perceptual hash (every flat image hashes
alike), so flat images are compared by file hash only and counted apart.

``imagehash`` is an optional dependency (``pip install 'adamllm[inspect]'``), imported on use.
Signatures are cached by file content in ``cache`` (a JSONL file), so a rerun only decodes new
images.
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
#: The colour layout: the mean colour of each cell of a COLOUR_GRID x COLOUR_GRID grid.
COLOUR_GRID = 8
#: Largest difference (of 255 levels, in any cell and channel) between the colour layouts of a
#: near-duplicate. Measured on the demo's 56 px drawings: JPEG at quality 30-95, resizing to 28-300
#: px and a light blur move a cell by at most 34 levels; the same layout with a shape in another
#: colour (or another background) moves one by 80 or more.
COLOUR_TOLERANCE = 48
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
    colours: bytes | None = None  # the colour layout: COLOUR_GRID**2 cells x RGB, row by row


@dataclass
class Match:
    train: ImageRef
    benchmark: ImageRef
    distance: int
    exact: bool
    colour_difference: int | None = None

    def as_dict(self) -> dict:
        return {"train": self.train.label, "benchmark": self.benchmark.group, "benchmark_image": self.benchmark.label,
                "benchmark_samples": self.benchmark.samples[:20], "distance": self.distance, "exact": self.exact,
                "colour_difference": self.colour_difference}


def _content(source: Any) -> bytes | None:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        from .images import open_regular

        with open_regular(source) as handle:  # a FIFO or device is refused, not read forever
            return handle.read()
    return None  # a decoded PIL image: no file to hash


@dataclass(frozen=True)
class Signature:
    """What is compared of a decoded image."""

    phash: int
    flat: bool
    colours: bytes

    def as_json(self, sha256: str) -> dict:
        return {"sha256": sha256, "phash": f"{self.phash:016x}", "flat": self.flat, "colours": self.colours.hex()}

    @classmethod
    def from_json(cls, entry: dict) -> "Signature":
        colours = bytes.fromhex(entry["colours"])
        if len(colours) != COLOUR_GRID * COLOUR_GRID * 3:
            raise ValueError("colour layout of another grid")
        return cls(int(entry["phash"], 16), bool(entry["flat"]), colours)


def perceptual(source: Any) -> Signature:
    """The signature of an image (path, bytes or PIL image); ``BadImage`` if unusable."""
    imagehash = require_imagehash()
    from PIL import Image

    from .images import load_rgb

    rgb = load_rgb(source)
    low, high = rgb.convert("L").resize((32, 32)).getextrema()
    colours = rgb.resize((COLOUR_GRID, COLOUR_GRID), Image.Resampling.BOX).tobytes()
    return Signature(int(str(imagehash.phash(rgb)), 16), high - low <= FLAT_RANGE, colours)


def colour_difference(a: bytes, b: bytes) -> int:
    """The largest difference of two colour layouts, over every cell and channel (0-255)."""
    return max(abs(x - y) for x, y in zip(a, b))


def _perceptual_or_error(source: Any) -> tuple[Signature | None, str | None]:
    try:
        return perceptual(source), None
    except (OSError, ValueError) as exc:
        return None, str(exc)


class HashCache:
    """sha256 of a file's bytes -> its signature, appended as JSON lines (an entry of an older
    adamllm, without the colours, is computed again)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.known: dict[str, Signature] = {}
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self.known[entry["sha256"]] = Signature.from_json(entry)
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue  # a torn last line, or an older entry

    def add(self, entries: dict[str, Signature]) -> None:
        self.known.update(entries)
        if self.path is None or not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            for sha, signature in entries.items():
                handle.write(json.dumps(signature.as_json(sha)) + "\n")


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
        except ValueError as exc:  # adamllm.images.BadImage: not a regular file, a symlink loop
            item.error = str(exc)
            continue
        item.sha256 = hashlib.sha256(data).hexdigest() if data is not None else None
        if item.sha256 in cache.known:
            _fill(item, cache.known[item.sha256])
        else:
            todo.append(item)
    sources = [item.ref.source for item in todo]
    if workers > 1 and len(todo) >= 64:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_perceptual_or_error, sources, chunksize=32))
    else:
        results = [_perceptual_or_error(source) for source in sources]
    fresh = {}
    for item, (signature, error) in zip(todo, results):
        item.error = error
        if signature is not None:
            _fill(item, signature)
            if item.sha256 is not None:
                fresh[item.sha256] = signature
    cache.add(fresh)
    return hashed


def _fill(item: Hashed, signature: Signature) -> None:
    item.phash, item.flat, item.colours = signature.phash, signature.flat, signature.colours


def _chunks(threshold: int) -> list[tuple[int, int]]:
    """``threshold + 1`` disjoint bit ranges covering the hash: two hashes within ``threshold``
    bits agree exactly on at least one of them (pigeonhole), so each range is an exact index."""
    count = threshold + 1
    bounds = [round(i * HASH_BITS / count) for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(count)]


def _part(value: int, bits: tuple[int, int]) -> int:
    low, high = bits
    return (value >> low) & ((1 << (high - low)) - 1)




def find_matches(train: list[Hashed], benchmark: list[Hashed], threshold: int = DEFAULT_THRESHOLD,
                 grey_only: list[Match] | None = None) -> list[Match]:
    """Pairs (training image, benchmark image) with the same bytes, or (neither flat) grey hashes
    at most ``threshold`` bits apart whose colour layouts agree too (an image hashed without one,
    as by an older cache, is judged by its grey hash); exact copies first, then by distance and
    names. ``grey_only``, when given, receives the pairs whose grey hashes agree but whose colours
    do not (not matches: counted, so the card can say so)."""
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
        for j in sorted(candidates):
            if (i, j) in found:
                continue
            distance = (item.phash ^ benchmark[j].phash).bit_count()
            if distance <= threshold:
                other = benchmark[j]
                colour = (colour_difference(item.colours, other.colours)
                          if item.colours is not None and other.colours is not None else None)
                match = Match(item.ref, other.ref, distance, False, colour)
                if colour is None or colour <= COLOUR_TOLERANCE:
                    found[(i, j)] = match
                elif grey_only is not None:
                    grey_only.append(match)
    return sorted(found.values(), key=lambda m: (not m.exact, m.distance, m.train.label, m.benchmark.group,
                                                 m.benchmark.label))


@dataclass
class OverlapResult:
    """What the card reports: how many images were compared, the matches, what could not be read."""

    threshold: int
    train: list[Hashed]
    benchmarks: dict[str, list[Hashed]]
    matches: list[Match]
    grey_only: list[Match] = field(default_factory=list)  # grey hashes agree, colours do not

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
            "hash": ("sha256 of the file (exact); near: phash (64-bit DCT of the grey image, imagehash) within "
                     "threshold bits and the mean colours of an 8 x 8 grid within colour_tolerance levels"),
            "colour_tolerance": COLOUR_TOLERANCE,
            "train_images": len(self.train),
            "train_flat": sum(h.flat for h in self.train),
            "train_unreadable": unreadable(self.train),
            "train_images_matched": len(flagged_train),
            "benchmark_images": sum(len(v) for v in self.benchmarks.values()),
            "benchmarks": per_benchmark,
            "pairs": len(self.matches),
            "exact_pairs": sum(m.exact for m in self.matches),
            "near_pairs": sum(not m.exact for m in self.matches),
            "grey_only_pairs": len(self.grey_only),
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
    grey_only: list[Match] = []
    matches = find_matches(train_hashed, every, threshold, grey_only)
    return OverlapResult(threshold, train_hashed, hashed, matches, grey_only)
