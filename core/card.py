"""The data card of a run directory: the numbers and the sampled records ``adamllm inspect`` shows.

``gather(run_dir, pm)`` reads what the stages left under ``RUN_DIR`` (``synthesize/``
triplets and progress, ``filter/`` verdicts, ``compose/`` mix, every ``rejected.jsonl``, each
stage's ``stats.json`` / ``_done.json``), the run's pairs (for captions) and its benchmarks (for the
overlap check, ``adamllm.overlap``), and returns a ``Card``: ``numbers`` (what ``--json`` prints and
``card.json`` holds) and a seeded sample of records per outcome (``yes``, ``no``, ..., ``no
triplet``) for ``adamllm.card_html``. Files are streamed, so a run of hundreds of thousands of
pairs is read without holding it; a stage that never ran is missing from the card, not an error.
Records are untrusted text: nothing here interprets them, the renderer escapes them.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from . import __version__
from .layout import REJECTED, RunLayout
from .sharding import shards
from .stages import STAGES

VERDICT_LABELS = ("yes", "no", "open", "other")
SECTIONS = (*VERDICT_LABELS, "no verdict", "no triplet", "composed")
LENGTH_FIELDS = ("caption", "instruction", "precise", "informative")
MAX_BINS = 20


class CardError(ValueError):
    """The run directory cannot make a card (it holds no stage output)."""


@dataclass
class Sampled:
    """One sampled pair id with everything the stages wrote about it."""

    id: str
    section: str
    pair: dict | None = None
    triplet: dict | None = None
    verdict: dict | None = None
    examples: list[dict] = field(default_factory=list)

    @property
    def image(self) -> str | None:
        for record in (self.pair, self.triplet):
            if record and isinstance(record.get("image"), str):
                return record["image"]
        for example in self.examples:
            images = example.get("images")
            if isinstance(images, list) and images and isinstance(images[0], str):
                return images[0]
        return None


@dataclass
class Card:
    run_dir: Path
    numbers: dict
    sections: dict[str, list[Sampled]]
    rejected: dict[str, list[dict]]
    overlap: Any = None  # adamllm.overlap.OverlapResult when the check ran


def text(value: Any) -> str:
    """A record field as text (records are untrusted: a number or a list is shown as JSON)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def words(value: Any) -> int:
    return len(text(value).split())


def _records(path: Path | None, bad: Counter) -> Iterator[dict]:
    """The JSON objects of a JSONL file and of its data-parallel shards (``NAME.rank<N>.jsonl``,
    left by a run stopped before it merged them); unreadable lines (a torn tail) are counted."""
    from .io import iter_records

    if path is None:
        return
    for part in [path, *shards(path)]:
        if part.is_file():
            for _where, record in iter_records(part, on_error=lambda where, _msg, p=part: bad.update([str(p)])):
                yield record


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stage_status(run_dir: Path) -> dict[str, dict]:
    """Each stage folder that holds files: whether it finished, and its stats (``stats.json``, else
    the ``_done.json`` summary without the fingerprint)."""
    found, layout = {}, RunLayout(run_dir)
    for stage in STAGES:
        folder = layout.stage(stage)
        if not folder.is_dir() or not any(p.is_file() for p in folder.rglob("*")):
            continue
        done, running = layout.done(stage), layout.running(stage)
        status = "done" if done.exists() else "interrupted or running" if running.exists() else "no marker"
        summary = _read_json(layout.stats(stage)) or {k: v for k, v in (_read_json(done) or {}).items()
                                                      if k != "fingerprint"}
        found[stage] = {"status": status, "summary": summary}
    return found


def histogram(counts: Counter) -> dict:
    """Summary and bins (``lo`` inclusive, ``hi`` exclusive, width 1, 2, 5, 10, 20, 50, ...) of
    lengths counted as ``{length: how many}``; at most ``MAX_BINS`` bins."""
    n = sum(counts.values())
    if n == 0:
        return {"n": 0, "min": None, "max": None, "mean": None, "median": None, "bins": []}
    low, high = 0, max(counts)  # from 0, so a chart shows how long, not only how spread
    width, step = 1, 0
    while (high // width) - (low // width) + 1 > MAX_BINS:
        step += 1
        width = (1, 2, 5)[step % 3] * 10 ** (step // 3)
    bins = []
    for start in range(low // width * width, high + 1, width):
        bins.append({"lo": start, "hi": start + width, "count": sum(c for v, c in counts.items()
                                                                    if start <= v < start + width)})
    ordered = sorted(counts.items())

    def at(position: int) -> int:
        seen = 0
        for value, count in ordered:
            seen += count
            if position < seen:
                return value
        return ordered[-1][0]

    median = (at((n - 1) // 2) + at(n // 2)) / 2
    return {"n": n, "min": min(counts), "max": high, "mean": round(sum(v * c for v, c in counts.items()) / n, 2),
            "median": int(median) if median == int(median) else median, "bins": bins}


def _choose(ids: list[str], count: int, seed: int, section: str) -> list[str]:
    """``count`` ids of a section, a seeded choice kept in file order."""
    if len(ids) <= count:
        return list(ids)
    picked = sorted(random.Random(f"{seed}:{section}").sample(range(len(ids)), count))
    return [ids[i] for i in picked]


def _rejected(run_dir: Path, keep: int) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """Quarantined records of every stage (and benchmark) by kind, and the first ``keep`` entries."""
    counts: dict[str, dict] = {}
    shown: dict[str, list[dict]] = {}
    for stage in STAGES:
        for path in sorted([run_dir / stage / REJECTED, *(run_dir / stage).glob(f"*/{REJECTED}")]):
            entries = list(_records(path, Counter()))
            if not entries:
                continue
            name = str(path.parent.relative_to(run_dir))
            counts[name] = dict(Counter(text(e.get("kind") or "bad_record") for e in entries))
            shown[name] = entries[:keep]
    return counts, shown


def _mix_path(run_dir: Path, layout: Any) -> Path | None:
    mix = RunLayout(run_dir).mix
    if mix.is_file():
        return mix
    if layout is not None and layout.train_data:
        given = Path(layout.train_data)
        given = given if given.is_absolute() or layout.base_dir is None else layout.base_dir / given
        return given if given.is_file() else None
    return None


@dataclass
class _Tally:
    """Pass one over the stage files: what happened to each pair id, lengths, the mix's shape."""

    progress: dict[str, bool] = field(default_factory=dict)  # pair id -> it got a triplet
    triplet_ids: dict[str, None] = field(default_factory=dict)  # in file order
    verdicts: dict[str, str] = field(default_factory=dict)
    lengths: dict[str, Counter] = field(default_factory=lambda: {name: Counter() for name in LENGTH_FIELDS})
    examples: int = 0
    turns: Counter = field(default_factory=Counter)  # messages per example
    example_stages: Counter = field(default_factory=Counter)
    mix_ids: dict[str, None] = field(default_factory=dict)
    images: set = field(default_factory=set)


def _tally(run_dir: Path, mix: Path | None, bad: Counter) -> _Tally:
    tally, layout = _Tally(), RunLayout(run_dir)
    for record in _records(layout.progress, bad):
        tally.progress.setdefault(text(record.get("id")), bool(record.get("triplet")))
    for record in _records(layout.triplets, bad):
        key = text(record.get("id"))
        if key not in tally.triplet_ids:
            tally.triplet_ids[key] = None
            for name in ("instruction", "precise", "informative"):
                tally.lengths[name][words(record.get(name))] += 1
    for record in _records(layout.verdicts, bad):
        tally.verdicts.setdefault(text(record.get("id")), text(record.get("verdict")))
    for record in _records(mix, bad):
        tally.examples += 1
        messages, images = record.get("messages"), record.get("images")
        tally.turns[str(len(messages) if isinstance(messages, list) else 0)] += 1
        if record.get("stage") is not None:
            tally.example_stages[text(record.get("stage"))] += 1
        if record.get("id") is not None:
            tally.mix_ids.setdefault(text(record.get("id")), None)
        if isinstance(images, list):
            tally.images.update(i for i in images if isinstance(i, str))
    return tally


def gather(run_dir: str | Path, pm: Any, *, sample: int = 8, seed: int = 0, config: str | Path | None = None,
           against: Iterable[str | Path] = (), threshold: int | None = None, overlap: bool = True,
           workers: int = 1, listed: int = 50) -> Card:
    """Everything the card shows. ``sample``: records per section; ``listed``: overlap pairs shown."""
    from .card_sources import iter_pairs, overlap_section, read_layout
    from .overlap import DEFAULT_THRESHOLD

    run_dir = Path(run_dir)
    stages = stage_status(run_dir) if run_dir.is_dir() else {}
    if not stages:
        raise CardError(f"{run_dir}: no stage output (none of {', '.join(s + '/' for s in STAGES)} holds a file); "
                        f"run `adamllm run CONFIG` with output_dir {run_dir} first")
    notes: list[str] = []
    bad: Counter = Counter()
    layout = read_layout(run_dir, Path(config) if config else None, pm)

    mix = _mix_path(run_dir, layout)
    tally = _tally(run_dir, mix, bad)
    progress, triplet_ids, verdicts, lengths = tally.progress, tally.triplet_ids, tally.verdicts, tally.lengths

    # the sections and the sample
    def section_of(key: str) -> str:
        if key in triplet_ids:
            label = verdicts.get(key)
            return label if label in VERDICT_LABELS else "no verdict"
        if key in progress or key in verdicts:
            return "no triplet"
        return "composed"

    universe = dict.fromkeys([*progress, *triplet_ids, *verdicts, *tally.mix_ids])
    members: dict[str, list[str]] = {name: [] for name in SECTIONS}
    for key in universe:
        members[section_of(key)].append(key)
    if "filter" not in stages:
        members.pop("no verdict")  # nothing was judged: every triplet is "not judged", not missing
        members["not judged"] = [k for k in universe if k in triplet_ids]
    chosen = {name: _choose(ids, sample, seed, name) for name, ids in members.items() if ids}
    sampled = {key: Sampled(key, name) for name, ids in chosen.items() for key in ids}

    # pass 2: the sampled records, and the captions (from the run's pairs)
    pairs_note = None
    try:
        for pair in iter_pairs(layout, run_dir, pm):
            lengths["caption"][words(pair.caption)] += 1
            if pair.id in sampled:
                sampled[pair.id].pair = {"image": pair.image, "caption": pair.caption,
                                         "instruction": pair.instruction or ""}
    except (ValueError, OSError, KeyError) as exc:
        pairs_note = f"captions not shown: the run's pairs could not be read ({str(exc).splitlines()[0]})"
        if layout.base_dir is None:
            pairs_note += ("; the run's config folder is unknown, so relative paths were read against the current "
                           "folder: pass --config CONFIG")
        notes.append(pairs_note)
    for record in _records(RunLayout(run_dir).triplets, Counter()):
        item = sampled.get(text(record.get("id")))
        if item is not None and item.triplet is None:
            item.triplet = record
    for record in _records(RunLayout(run_dir).verdicts, Counter()):
        item = sampled.get(text(record.get("id")))
        if item is not None and item.verdict is None:
            item.verdict = record
    by_image = {s.image: s for s in sampled.values() if s.image}
    for record in _records(mix, Counter()):
        item = sampled.get(text(record.get("id")))
        if item is None:
            first = (record.get("images") or [None])[0]
            item = by_image.get(first) if isinstance(first, str) else None
        if item is not None and len(item.examples) < 4:
            item.examples.append(record)

    rejected_counts, rejected_shown = _rejected(run_dir, sample)
    synth = stages.get("synthesize", {}).get("summary", {})
    judged = len(verdicts)
    verdict_counts = Counter(verdicts.values())
    verdict_numbers = {label: verdict_counts.get(label, 0) for label in VERDICT_LABELS}
    verdict_numbers.update((k, v) for k, v in verdict_counts.items() if k not in VERDICT_LABELS)
    counts = {
        "pairs_read": synth.get("pairs_read"),
        "pairs": len(progress) if "synthesize" in stages else None,
        "triplets": len(triplet_ids) if "synthesize" in stages else None,
        "no_triplet": sum(not v for v in progress.values()) if "synthesize" in stages else None,
        "verdicts": verdict_numbers if "filter" in stages else None,
        "judged": judged if "filter" in stages else None,
        "keep_rate": round(verdict_counts["yes"] / judged, 4) if judged else None,
        "examples": tally.examples if mix else None,
        "examples_by_turns": dict(sorted(tally.turns.items(), key=lambda kv: int(kv[0]))) if mix else None,
        "examples_by_stage": dict(sorted(tally.example_stages.items())) if tally.example_stages else None,
        "mix_images": len(tally.images) if mix else None,
        "quarantined": {name: sum(kinds.values()) for name, kinds in rejected_counts.items()},
    }
    if bad:
        notes += [f"{path}: {n} line(s) could not be read and were left out" for path, n in sorted(bad.items())]
    missing = [s for s in ("synthesize", "filter", "compose") if s not in stages]
    if missing:
        notes.append(f"no output of stage(s) {', '.join(missing)}: their numbers are not shown")
    overlap_numbers, result = overlap_section(run_dir, pm, layout, mix, against, overlap, workers, listed,
                                              DEFAULT_THRESHOLD if threshold is None else threshold)
    numbers = {
        "adamllm_version": __version__,
        "run_dir": str(run_dir.resolve()),
        "config_from": layout.origin,
        "stages": stages,
        "counts": counts,
        "quarantined_by_kind": rejected_counts,
        "lengths": {name: histogram(lengths[name]) for name in LENGTH_FIELDS},
        "overlap": overlap_numbers,
        "sample": {"seed": seed, "per_section": sample,
                   "sections": {name: {"total": len(members[name]), "ids": ids} for name, ids in chosen.items()}},
        "notes": notes,
    }
    if pairs_note is not None:
        numbers["lengths"]["caption"]["unavailable"] = pairs_note
    sections = {name: [sampled[k] for k in ids] for name, ids in chosen.items()}
    return Card(run_dir, numbers, sections, rejected_shown, result)


def write_card(run_dir: str | Path, pm: Any, **options: Any) -> tuple[Card, Path]:
    """``gather`` then write ``RUN_DIR/card.html`` and ``RUN_DIR/card.json`` (each replaced whole)."""
    import os

    from .card_html import render

    card = gather(run_dir, pm, **options)
    page = card.run_dir / "card.html"
    for path, content in ((card.run_dir / "card.json", json.dumps(card.numbers, indent=2, default=str) + "\n"),
                          (page, render(card))):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
    return card, page
