"""The data stages: synthesize, filter and compose, driving any component of their kind.

Each stage reads typed records, hands batches to its component (``adamllm.contracts``), checks
what comes back, and appends results one by one, so a killed run loses at most the batch in
flight and a rerun skips every record already done (by id). Bad input records (a malformed line,
a missing or corrupt image, an empty caption, a duplicate id) go to the stage's quarantine
(``OUT/<stage>/rejected.jsonl``, or an error under ``on_bad_record: error``); a stage left with no
usable record fails. Each writes ``stats.json`` beside its output. Reading, checking and resuming
live here so a plugin only implements the method its kind needs.
"""
from __future__ import annotations

import json
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from .io import JsonlAppender, completed_ids, iter_records, write_jsonl
from .pairs import PairStats
from .records import TaskTriplet, TrainingExample, Verdict
from .stages import StageError

PROGRESS = "_progress.jsonl"  # synthesize: every pair handled, with or without a triplet
DEFAULT_BATCH_SIZE = 8


def batched(items: Iterable[Any], size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _coerce(model: type, value: Any, where: str) -> Any:
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except Exception as exc:  # pydantic.ValidationError
        raise StageError(f"{where} returned an invalid {model.__name__}: {exc}") from None


def _results(component: Any, method: str, batch: Sequence, ctx) -> list:
    results = list(getattr(component, method)(batch, ctx))
    if len(results) != len(batch):
        raise StageError(f"{type(component).__name__}.{method} returned {len(results)} results for "
                         f"{len(batch)} records; it must return one per record, in order")
    return results


def _progress(total: int | None, desc: str, initial: int = 0):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="rec", dynamic_ncols=True, leave=False)


def _fresh(ctx, *paths: Path) -> None:
    if ctx.force:
        for path in paths:
            path.unlink(missing_ok=True)


def _write_stats(ctx, stats: dict) -> dict:
    (ctx.stage_dir / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    return stats


# -- synthesize ----------------------------------------------------------------------------
def _readable_image(path: str) -> str | None:
    """Why the image cannot be used, or None (decoded once here, so a corrupt image is set aside
    before it reaches a model)."""
    from .images import open_image

    try:
        open_image(path)
    except (OSError, ValueError) as exc:
        return str(exc)
    return None


def _unique_pairs(ctx, pair_stats: PairStats, quarantine, check_images: bool = True) -> Iterator:
    """The domain's pairs with duplicate ids and unreadable images set aside."""
    seen: set[str] = set()
    for pair in ctx.pairs(pair_stats):
        if pair.id in seen:
            quarantine.reject(pair.where or pair.image, f"pair id {pair.id!r} appears more than once; the first "
                              f"is kept", kind="duplicate_id", record_id=pair.id)
            continue
        seen.add(pair.id)
        problem = _readable_image(pair.image) if check_images else None
        if problem is not None:
            quarantine.reject(pair.where or pair.image, problem, kind="bad_image", record_id=pair.id)
            continue
        yield pair


def _require_some(stage: str, usable: int, quarantine, what: str) -> None:
    if usable == 0:
        raise StageError(f"stage {stage!r} found no usable {what}: {quarantine.total} rejected "
                         f"({', '.join(f'{k}: {v}' for k, v in sorted(quarantine.counts.items())) or 'none'})"
                         + (f"; see {quarantine.path}" if quarantine.total and quarantine.path else ""))


def run_synthesize_stage(ctx) -> dict:
    synthesizer = ctx.component()
    out, progress_file = ctx.output_path(), ctx.stage_dir / PROGRESS
    _fresh(ctx, out, progress_file)
    done = completed_ids(progress_file) | completed_ids(out)
    quarantine = ctx.quarantine()
    pair_stats = PairStats(quarantine=quarantine)
    counts: Counter = Counter()
    name = type(synthesizer).__name__

    def pending():
        for pair in _unique_pairs(ctx, pair_stats, quarantine):
            if pair.id in done:
                counts["already_done"] += 1
                continue
            yield pair

    with quarantine, JsonlAppender(out) as triplets, JsonlAppender(progress_file) as handled, \
            _progress(None, "synthesize") as bar:
        for batch in batched(pending(), getattr(synthesizer, "batch_size", DEFAULT_BATCH_SIZE)):
            for pair, result in zip(batch, _results(synthesizer, "synthesize", batch, ctx)):
                if result is not None:
                    triplet = _coerce(TaskTriplet, result, f"{name}.synthesize")
                    if triplet.id != pair.id:
                        raise StageError(f"{name}.synthesize returned a triplet with id {triplet.id!r} "
                                         f"for pair {pair.id!r}")
                    triplets.write(triplet)
                    counts["triplets"] += 1
                else:
                    counts["no_triplet"] += 1
                handled.write({"id": pair.id, "triplet": result is not None})
            bar.update(len(batch))
    handled_ids = completed_ids(progress_file)
    _require_some("synthesize", len(handled_ids), quarantine, "image-caption pairs")
    total_triplets = len(completed_ids(out))
    return _write_stats(ctx, {"pairs_read": pair_stats.read, "pairs_skipped": pair_stats.skipped,
                              "triplets": total_triplets, "this_run": dict(counts),
                              "no_triplet": len(handled_ids) - total_triplets, **quarantine.stats(),
                              **(getattr(synthesizer, "stats", None) or {})})


# -- filter ---------------------------------------------------------------------------------
def run_filter_stage(ctx) -> dict:
    judge = ctx.component()
    source, out = ctx.input_path(), ctx.output_path()
    _fresh(ctx, out)
    done = completed_ids(out)
    name = type(judge).__name__
    quarantine = ctx.quarantine()
    pending = (t for t in _unique(iter_records(source, TaskTriplet, on_error=quarantine.reject), quarantine)
               if t.id not in done)
    with quarantine, JsonlAppender(out) as verdicts, _progress(None, "filter", len(done)) as bar:
        for batch in batched(pending, getattr(judge, "batch_size", DEFAULT_BATCH_SIZE)):
            for triplet, result in zip(batch, _results(judge, "judge", batch, ctx)):
                verdict = _coerce(Verdict, result, f"{name}.judge")
                if verdict.id != triplet.id:
                    raise StageError(f"{name}.judge returned a verdict for {verdict.id!r} for triplet {triplet.id!r}")
                verdicts.write(verdict)
            bar.update(len(batch))
    counts = Counter(v.verdict for _, v in iter_records(out, Verdict))
    total = sum(counts.values())
    _require_some("filter", total, quarantine, "triplets")
    return _write_stats(ctx, {"triplets": total, "verdicts": dict(counts),
                              "keep_rate": round(counts["yes"] / total, 4) if total else None, **quarantine.stats()})


# -- compose --------------------------------------------------------------------------------
def _unique(records: Iterable[tuple[str, Any]], quarantine) -> Iterator[Any]:
    """Records whose id was not seen before (a repeated id is set aside: the first one is kept)."""
    seen: set[str] = set()
    for where, record in records:
        if record.id in seen:
            quarantine.reject(where, f"id {record.id!r} appears more than once; the first is kept",
                              kind="duplicate_id", record_id=record.id)
            continue
        seen.add(record.id)
        yield record


def _by_id(path: Path, model: type, quarantine) -> dict[str, Any]:
    return {r.id: r for r in _unique(iter_records(path, model, on_error=quarantine.reject), quarantine)}


def run_compose_stage(ctx) -> dict:
    composer = ctx.component()
    quarantine = ctx.quarantine()
    with quarantine:
        triplets = _by_id(ctx.input_path(), TaskTriplet, quarantine)
        verdicts = _by_id(ctx.input_path("filter"), Verdict, quarantine)
        name = type(composer).__name__
        pair_stats = PairStats(quarantine=quarantine)
        pairs = _unique_pairs(ctx, pair_stats, quarantine, check_images=False)  # synthesize decoded them
        examples = (_coerce(TrainingExample, e, f"{name}.compose")
                    for e in composer.compose(pairs, triplets, verdicts, ctx))
        count = write_jsonl(ctx.output_path(), examples)
    if count == 0:
        raise StageError(f"{name}.compose wrote no training example from {pair_stats.read} pairs")
    stats = {"pairs_read": pair_stats.read, "triplets": len(triplets), "verdicts": len(verdicts),
             "examples": count, **(getattr(composer, "stats", None) or {}), **quarantine.stats()}
    return _write_stats(ctx, stats)
