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

from .io import JsonlAppender, completed_ids, count_records, iter_records, write_jsonl
from .pairs import PairStats
from .quarantine import REJECTED, Quarantine
from .records import Failure, TaskTriplet, TrainingExample, Verdict
from .distributed import World
from .layout import PROGRESS, STATS
from .sharding import exchange_stats, fold_shards, merge_in_order, remove_shards, shard_path, shards
from .stages import StageError

DATASET = "dataset"  # compose: the mix as a `datasets` save_to_disk folder

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


def _iterable(returned: Any, component: Any, method: str) -> Any:
    """What a component's method returned, refused in one line when it is not a sequence of results."""
    if returned is None or isinstance(returned, (str, bytes, dict)) or not hasattr(returned, "__iter__"):
        raise StageError(f"{type(component).__name__}.{method} returned {type(returned).__name__}; it must "
                         f"return a list (one result per record, in order)")
    return returned


def _results(component: Any, method: str, batch: Sequence, ctx) -> list:
    results = list(_iterable(getattr(component, method)(batch, ctx), component, method))
    if len(results) != len(batch):
        raise StageError(f"{type(component).__name__}.{method} returned {len(results)} results for "
                         f"{len(batch)} records; it must return one per record, in order")
    return results


def _progress(total: int | None, desc: str, initial: int = 0, world: World | None = None):
    """A bar with records/s and, when the total is known, the ETA (the main process's only)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="rec", dynamic_ncols=True, leave=False,
                disable=world is not None and not world.is_main)


def _fresh(ctx, *paths: Path) -> None:
    if ctx.force:
        for path in paths:
            path.unlink(missing_ok=True)


def _count(path: Path) -> int | None:
    try:
        return count_records(path)
    except (OSError, ValueError):  # DataError: the stage's reader says what is wrong with the file
        return None


def _write_stats(ctx, stats: dict) -> dict:
    (ctx.stage_dir / STATS).write_text(json.dumps(stats, indent=2), encoding="utf-8")
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


def _unique_pairs(ctx, pair_stats: PairStats, quarantine) -> Iterator:
    """The domain's pairs, in source order, with repeated ids set aside (the first is kept)."""
    seen: set[str] = set()
    for pair in ctx.pairs(pair_stats):
        if pair.id in seen:
            quarantine.reject(pair.where or pair.image, f"pair id {pair.id!r} appears more than once; the first "
                              f"is kept", kind="duplicate_id", record_id=pair.id)
            continue
        seen.add(pair.id)
        yield pair


def _readable_pairs(pairs: Iterable, quarantine) -> Iterator:
    """Pairs whose image decodes (a corrupt one is set aside before it reaches a model)."""
    for pair in pairs:
        problem = _readable_image(pair.image)
        if problem is not None:
            quarantine.reject(pair.where or pair.image, problem, kind="bad_image", record_id=pair.id)
            continue
        yield pair


def _require_some(stage: str, usable: int, quarantine, what: str, hint: str = "") -> None:
    if usable == 0:
        raise StageError(f"stage {stage!r} found no usable {what}: {quarantine.total} rejected "
                         f"({', '.join(f'{k}: {v}' for k, v in sorted(quarantine.counts.items())) or 'none'})"
                         + (f"; see {quarantine.path}" if quarantine.total and quarantine.path else "") + hint)


def _upstream_warning(ctx, source: Path) -> str:
    """What the synthesize stage said about an empty triplets file it wrote (its stats' warning)."""
    if source != ctx.output_path("synthesize"):
        return ""
    try:
        warning = json.loads((source.parent / STATS).read_text(encoding="utf-8")).get("warning")
    except (OSError, ValueError):
        return ""
    return f" (synthesize: {warning})" if warning else ""


class _Shares:
    """One data stage's outputs under data parallelism (``adamllm.sharding``): this process's
    files, the ids finished by any process of any earlier run, and this process's quarantine."""

    def __init__(self, ctx, world: World, *outputs: Path) -> None:
        self.world, self.outputs = world, outputs
        if world.is_main:
            _fresh(ctx, *outputs)
            if ctx.force:
                for path in (*outputs, ctx.stage_dir / REJECTED):
                    remove_shards(path)
            self.quarantine = ctx.quarantine()  # source problems and the main process's own records
        else:  # every process reads the same source: only the main one records its problems
            self.quarantine = Quarantine(None, ctx.config.on_bad_record)
        world.barrier()  # old files are gone before anyone reads what is done
        self.done = set().union(*(completed_ids(p) for path in outputs for p in [path, *shards(path)]))
        world.barrier()  # everybody has read what is done before anyone appends
        rejected = ctx.stage_dir / REJECTED
        self.own_quarantine = self.quarantine if world.is_main else Quarantine(
            shard_path(rejected, world.rank), ctx.config.on_bad_record)

    def mine(self, path: Path) -> Path:
        return self.world.output(path)

    def merge(self, ctx, ids_in_order) -> None:
        """After every process finished: the main process merges shards into the main files."""
        self.own_quarantine.close()
        self.world.barrier()
        if self.world.is_main and any(shards(p) for p in self.outputs):
            order = list(ids_in_order())
            for path in self.outputs:
                merge_in_order(path, order)
            _merge_rejected(ctx.stage_dir / REJECTED, self.quarantine)
        self.world.barrier()


def _merge_rejected(path: Path, quarantine) -> None:
    for entry in fold_shards(path):
        quarantine.reject(entry.get("where", "?"), entry.get("reason", "?"), kind=entry.get("kind", "bad_record"),
                          record_id=entry.get("id"))


def run_synthesize_stage(ctx) -> dict:
    world = World()
    synthesizer = ctx.component()
    out, progress_file = ctx.output_path(), ctx.stage_dir / PROGRESS
    shares = _Shares(ctx, world, out, progress_file)
    quarantine = shares.quarantine
    lost = _lost_triplets(out, progress_file)
    done = shares.done - lost
    if lost:
        ctx.echo(f"[synthesize] {len(lost)} pair(s) recorded with a triplet have none in {out} (edited by hand?): "
                 f"{', '.join(sorted(lost)[:5])}{' ...' if len(lost) > 5 else ''}; synthesizing them again")
    pair_stats = PairStats(quarantine=quarantine)
    counts: Counter = Counter()
    name = type(synthesizer).__name__
    total = ctx.pair_total() if world.is_main else None

    def pending():
        for pair in _unique_pairs(ctx, pair_stats, quarantine):
            if pair.id in done:
                if world.is_main:  # every process skips it; one counts it
                    counts["already_done"] += 1
                continue
            yield pair

    with quarantine, shares.own_quarantine, JsonlAppender(shares.mine(out)) as triplets, \
            JsonlAppender(shares.mine(progress_file)) as handled, \
            _progress(total, "synthesize", len(done), world) as bar:
        mine = _readable_pairs(world.mine(pending()), shares.own_quarantine)
        for batch in batched(mine, getattr(synthesizer, "batch_size", DEFAULT_BATCH_SIZE)):
            for pair, result in zip(batch, _results(synthesizer, "synthesize", batch, ctx)):
                if isinstance(result, Failure):
                    if result.id != pair.id:
                        raise StageError(f"{name}.synthesize returned a failure for {result.id!r} for pair {pair.id!r}")
                    shares.own_quarantine.reject(pair.where or pair.image, result.reason, kind=result.kind,
                                                 record_id=pair.id)
                    counts["failed"] += 1
                    handled.write({"id": pair.id, "triplet": False, "failed": result.kind})
                    continue
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
            bar.update(len(batch) * world.size)
    component_stats = exchange_stats(ctx.stage_dir, world, {"this_run": dict(counts),
                                                            **(getattr(synthesizer, "stats", None) or {})})
    silent = Quarantine(None)  # the order pass: problems were recorded by the pass above
    shares.merge(ctx, lambda: (p.id for p in _unique_pairs(ctx, PairStats(quarantine=silent), silent)))
    if lost and world.is_main:  # the triplets made again go back to their place in input order
        merge_in_order(out, (p.id for p in _unique_pairs(ctx, PairStats(quarantine=silent), silent)), always=True)
    handled_ids = completed_ids(progress_file)
    if world.is_main:
        _require_some("synthesize", len(handled_ids), Quarantine(ctx.stage_dir / REJECTED), "image-caption pairs")
    total_triplets = len(completed_ids(out))
    failed = _failed(progress_file)
    quarantined = Quarantine(ctx.stage_dir / REJECTED) if world.is_main else quarantine
    stats = {"pairs_read": pair_stats.read, "pairs_skipped": pair_stats.skipped,
             "pair_images_in_images_folder": pair_stats.in_images_folder,
             "triplets": total_triplets, "no_triplet": len(handled_ids) - total_triplets - sum(failed.values()),
             "failed": dict(failed), **quarantined.stats(), "num_processes": world.size, **component_stats}
    if not world.is_main:
        return stats
    if total_triplets == 0:  # every pair failed: an error; none parsed: said loudly, kept in stats
        message = _no_triplet_message(ctx, len(handled_ids), failed, component_stats)
        if sum(failed.values()) >= len(handled_ids):
            _write_stats(ctx, {**stats, "error": message})
            raise StageError(message)
        stats["warning"] = message
        ctx.echo(f"[synthesize] warning: {message}")
    return _write_stats(ctx, stats)


def _lost_triplets(out: Path, progress_file: Path) -> set[str]:
    """Pairs the progress file says gave a triplet that no triplets file (or shard) holds: a line
    deleted by hand, say. They are not done: they are synthesized again."""
    made: set[str] = set()
    for path in [progress_file, *shards(progress_file)]:
        if path.exists():
            made |= {str(r["id"]) for _, r in iter_records(path, tolerant=True)
                     if isinstance(r, dict) and r.get("triplet") and "id" in r}
    if not made:
        return set()
    return made - set().union(*(completed_ids(p) for p in [out, *shards(out)]))


def _failed(progress_file: Path) -> Counter:
    """Pairs the synthesizer returned a ``Failure`` for, by kind (over every run of the stage)."""
    if not progress_file.exists():
        return Counter()
    return Counter(r["failed"] for _, r in iter_records(progress_file, tolerant=True)
                   if isinstance(r, dict) and r.get("failed"))


def _no_triplet_message(ctx, handled: int, failed: Counter, component_stats: dict) -> str:
    """One line for a synthesize stage that wrote no triplet: how many pairs failed and the first
    reason, or, when none failed, the synthesizer's own counters of why no triplet came."""
    rejected = ctx.stage_dir / REJECTED
    if failed:
        reason = next((e.get("reason") for _, e in iter_records(rejected, tolerant=True)
                       if isinstance(e, dict) and e.get("kind") in failed), None) if rejected.exists() else None
        kinds = ", ".join(f"{k}: {v}" for k, v in failed.most_common())
        return (f"stage 'synthesize' wrote no triplet: {sum(failed.values())} of {handled} pairs failed ({kinds})"
                + (f": {reason}" if reason else "") + f"; see {rejected}")
    why = ", ".join(f"{k}: {v}" for k, v in component_stats.items()
                    if isinstance(v, int) and v and k not in ("pairs", "generated_tokens", "this_run", "triplets"))
    return (f"stage 'synthesize' wrote no triplet for {handled} pairs" + (f" ({why})" if why else "")
            + f"; see {ctx.stage_dir / STATS} and the raw generations with --preview")


# -- filter ---------------------------------------------------------------------------------
def run_filter_stage(ctx) -> dict:
    world = World()
    judge = ctx.component()
    source, out = ctx.input_path(), ctx.output_path()
    shares = _Shares(ctx, world, out)
    done, quarantine = shares.done, shares.quarantine
    name = type(judge).__name__

    def unique(q):
        return _unique(iter_records(source, TaskTriplet, on_error=q.reject), q)

    pending = world.mine(t for t in unique(quarantine) if t.id not in done)
    total = _count(source) if world.is_main else None
    with quarantine, JsonlAppender(shares.mine(out)) as verdicts, \
            _progress(total, "filter", len(done), world) as bar:
        for batch in batched(pending, getattr(judge, "batch_size", DEFAULT_BATCH_SIZE)):
            for triplet, result in zip(batch, _results(judge, "judge", batch, ctx)):
                verdict = _coerce(Verdict, result, f"{name}.judge")
                if verdict.id != triplet.id:
                    raise StageError(f"{name}.judge returned a verdict for {verdict.id!r} for triplet {triplet.id!r}")
                verdicts.write(verdict)
            bar.update(len(batch) * world.size)
    component_stats = exchange_stats(ctx.stage_dir, world, getattr(judge, "stats", None) or {})
    shares.merge(ctx, lambda: (t.id for t in unique(Quarantine(None))))
    if not world.is_main:
        return {}
    every = [v for _, v in iter_records(out, Verdict)]
    counts = Counter(v.verdict for v in every)
    total = sum(counts.values())
    _require_some("filter", total, quarantine, "triplets", _upstream_warning(ctx, source) if not total else "")
    summarize = getattr(judge, "summarize", None)  # optional: stats over every verdict, resumed ones too
    return _write_stats(ctx, {"triplets": total, "verdicts": dict(counts),
                              "keep_rate": round(counts["yes"] / total, 4) if total else None, **quarantine.stats(),
                              "num_processes": world.size, **component_stats,
                              **(summarize(every) if summarize else {})})


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


def _formats(ctx) -> list[str]:
    """The forms of the mix to write: the composer's ``formats`` option (``adamllm.mix_writers``),
    else the default ones. Part of the compose fingerprint through the composer section."""
    from .mix_writers import DEFAULT_FORMATS, check_formats

    chosen = getattr(getattr(ctx.config.composer, "options", None), "formats", None)
    return check_formats(DEFAULT_FORMATS if chosen is None else chosen)


def run_compose_stage(ctx) -> dict:
    world = World()
    if not world.is_main:  # one writer; the other processes wait for the mix
        world.barrier()
        return {}
    try:
        return _compose(ctx)
    finally:
        world.barrier()


def _compose(ctx) -> dict:
    """The composer's examples, their images placed in ``OUT/compose/images/`` (named relative to
    the mix's folder), written as ``mix.jsonl`` and in the selected forms (``adamllm.mix_writers``)."""
    from .mix_writers import ImageFolder, write_formats

    formats = _formats(ctx)
    composer = ctx.component()
    quarantine = ctx.quarantine()
    with quarantine:
        triplets = _by_id(ctx.input_path(), TaskTriplet, quarantine)
        verdicts = _by_id(ctx.input_path("filter"), Verdict, quarantine)
        name = type(composer).__name__
        pair_stats = PairStats(quarantine=quarantine)
        pairs = _unique_pairs(ctx, pair_stats, quarantine)  # images: synthesize decoded them
        examples = (_coerce(TrainingExample, e, f"{name}.compose")
                    for e in _iterable(composer.compose(pairs, triplets, verdicts, ctx), composer, "compose"))
        images = ImageFolder(ctx.stage_dir, ctx.pair_images_root())  # the mix's own images/, paths relative
        count = write_jsonl(ctx.output_path(), images.relocate(examples))
    if count == 0:
        raise StageError(f"{name}.compose wrote no training example from {pair_stats.read} pairs")
    images.prune()
    written = write_formats(ctx.output_path(), formats)
    stats = {"pairs_read": pair_stats.read, "pair_images_in_images_folder": pair_stats.in_images_folder,
             "triplets": len(triplets), "verdicts": len(verdicts),
             "examples": count, "formats": written, "image_folder": images.stats(),
             **(getattr(composer, "stats", None) or {}), **quarantine.stats()}
    return _write_stats(ctx, stats)
