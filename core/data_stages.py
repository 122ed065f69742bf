"""The data stages: synthesize, filter and compose, driving any component of their kind.

Each stage reads typed records, hands batches to its component (``adamllm.contracts``), checks
what comes back, and appends results one by one, so a killed run loses at most the batch in
flight and a rerun skips every record already done (by id). Each writes ``stats.json`` beside its
output. Reading and resuming live here so a plugin only implements the method its kind needs.
"""
from __future__ import annotations

import json
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from .io import DataError, JsonlAppender, completed_ids, iter_records, write_jsonl
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
def run_synthesize_stage(ctx) -> dict:
    synthesizer = ctx.component()
    out, progress_file = ctx.output_path(), ctx.stage_dir / PROGRESS
    _fresh(ctx, out, progress_file)
    done = completed_ids(progress_file) | completed_ids(out)
    pair_stats = PairStats()
    counts: Counter = Counter()
    seen: set[str] = set()
    name = type(synthesizer).__name__

    def pending():
        for pair in ctx.pairs(pair_stats):
            if pair.id in seen:
                counts["duplicate_id"] += 1
                continue
            seen.add(pair.id)
            if pair.id in done:
                counts["already_done"] += 1
                continue
            yield pair

    with JsonlAppender(out) as triplets, JsonlAppender(progress_file) as handled, \
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
    total_triplets = len(completed_ids(out))
    return _write_stats(ctx, {"pairs_read": pair_stats.read, "pairs_skipped": pair_stats.skipped,
                              "triplets": total_triplets, "this_run": dict(counts),
                              "no_triplet": len(completed_ids(progress_file)) - total_triplets})


# -- filter ---------------------------------------------------------------------------------
def run_filter_stage(ctx) -> dict:
    judge = ctx.component()
    source, out = ctx.input_path(), ctx.output_path()
    _fresh(ctx, out)
    done = completed_ids(out)
    name = type(judge).__name__
    pending = (t for _, t in iter_records(source, TaskTriplet) if t.id not in done)
    with JsonlAppender(out) as verdicts, _progress(None, "filter", len(done)) as bar:
        for batch in batched(pending, getattr(judge, "batch_size", DEFAULT_BATCH_SIZE)):
            for triplet, result in zip(batch, _results(judge, "judge", batch, ctx)):
                verdict = _coerce(Verdict, result, f"{name}.judge")
                if verdict.id != triplet.id:
                    raise StageError(f"{name}.judge returned a verdict for {verdict.id!r} for triplet {triplet.id!r}")
                verdicts.write(verdict)
            bar.update(len(batch))
    counts = Counter(v.verdict for _, v in iter_records(out, Verdict))
    total = sum(counts.values())
    return _write_stats(ctx, {"triplets": total, "verdicts": dict(counts),
                              "keep_rate": round(counts["yes"] / total, 4) if total else None})


# -- compose --------------------------------------------------------------------------------
def _by_id(path: Path, model: type) -> dict[str, Any]:
    records: dict[str, Any] = {}
    for where, record in iter_records(path, model):
        if record.id in records:
            raise DataError(f"{where}: id {record.id!r} appears twice")
        records[record.id] = record
    return records


def run_compose_stage(ctx) -> dict:
    composer = ctx.component()
    triplets = _by_id(ctx.input_path(), TaskTriplet)
    verdicts = _by_id(ctx.input_path("filter"), Verdict)
    name = type(composer).__name__
    pair_stats = PairStats()
    examples = (_coerce(TrainingExample, e, f"{name}.compose")
                for e in composer.compose(ctx.pairs(pair_stats), triplets, verdicts, ctx))
    count = write_jsonl(ctx.output_path(), examples)
    if count == 0:
        raise StageError(f"{name}.compose wrote no training example from {pair_stats.read} pairs")
    stats = {"pairs_read": pair_stats.read, "triplets": len(triplets), "verdicts": len(verdicts),
             "examples": count, **(getattr(composer, "stats", None) or {})}
    return _write_stats(ctx, stats)
