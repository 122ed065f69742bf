"""The runner: generate each benchmark's unfinished samples in batches, then merge, rescore, report.

Bad input follows the one policy of ``adamllm.quarantine`` (``on_bad_record``): a sample that
cannot be used (a record its benchmark rejects while loading, a label its scorer cannot read, an
image that cannot be decoded) is set aside in ``OUT/<benchmark>/rejected.jsonl`` and left out of
the scores (``n_rejected`` in the report) under ``skip``, or stops the run naming it under
``error``. rejected.jsonl is rebuilt on every run (set-aside samples have no prediction, so a rerun
tries them again). A benchmark without a sample to score, a model that does not load and a
benchmark whose every sample the backbone refused are errors (``EvaluationError``), not a report
of zeros.
"""
from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..benchmark import Benchmark, CheckedScorer, open_image
from ..io import DataError, completed_ids, iter_records
from ..quarantine import REJECTED, Quarantine
from ..distributed import World
from ..layout import REPORT
from ..sharding import fold_shards, shards
from ..content import cache_for
from .predictions import PREDICTIONS, _claim, _prediction_files, input_signature, merge_predictions, model_fingerprint
from .report import _now, _summary, domain_averages
from .task import EvalTask, EvaluationError

DEFAULT_BATCH_SIZE = 8
ON_BAD_RECORD = ("skip", "error")


def evaluate(
    adapter: Any,
    benchmarks: Sequence[Benchmark | EvalTask],
    out_dir: str | os.PathLike,
    *,
    limit: int | None = None,
    batch_size: int | None = None,
    scorer: str | None = None,
    seed: int = 0,
    model_name: str = "",
    max_new_tokens: int | None = None,
    restart_stale: bool = False,
    on_bad_record: str = "skip",
    progress: bool = True,
    extra: dict | None = None,
) -> dict:
    """Evaluate ``adapter`` on ``benchmarks``; returns the report (also written under ``out_dir``).

    ``scorer`` None: each benchmark's own default (``legacy`` for the built-ins, or the scorer its
    config names); a benchmark that does not know the requested name decides (it may raise).
    ``batch_size`` None: the benchmark's ``batch_size`` attribute if it has one, else 8.
    ``on_bad_record``: ``skip`` (set bad samples aside in ``OUT/<benchmark>/rejected.jsonl``) or
    ``error`` (stop at the first, naming it). A benchmark whose ``samples`` takes a ``quarantine``
    keyword gets the benchmark's ``Quarantine`` and sets its bad records aside itself.
    The adapter's evaluation settings (``evaluation_settings``: a system message, an image budget)
    apply to every benchmark and are compared on a rerun like the generation settings. ``extra``:
    more top-level entries for the report (``adamllm eval`` records where its image budget came from).
    Raises ``EvaluationError`` (or ``DataError``) for a model that cannot be loaded, a benchmark
    with no sample left, and a benchmark whose every sample the backbone refused (after writing
    its predictions).
    """
    from ..backbone import GenerationSettings
    from ..reports import write_report

    if on_bad_record not in ON_BAD_RECORD:
        raise ValueError(f"on_bad_record must be one of {', '.join(ON_BAD_RECORD)}, got {on_bad_record!r}")
    world = World()
    out = Path(out_dir)
    tasks = [b if isinstance(b, EvalTask) else EvalTask(b, getattr(b, "domain", None) or None) for b in benchmarks]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise EvaluationError(f"a benchmark is listed twice: {', '.join(names)}")
    fingerprint = model_fingerprint(model_name)
    prompting = evaluation_settings(adapter)
    results: dict[str, dict] = {}
    for task in tasks:
        bench = task.benchmark
        bench_dir = out / task.name
        describe = bench.describe() if hasattr(bench, "describe") else {}
        quarantine = _fresh_quarantine(bench_dir, on_bad_record, world)
        try:
            samples = _load_samples(bench, quarantine)
            if limit is not None:
                samples = samples[:limit]
            _check_unique_ids(task.name, samples)
            judge = bench.get_scorer(scorer, seed) if scorer else bench.get_scorer(seed=seed)
            judge = CheckedScorer(judge, task.name)  # no NaN score is saved
            samples = _scoreable(task.name, samples, judge, quarantine)
            if not samples:
                raise EvaluationError(_no_samples(task.name, describe, quarantine))
            settings = GenerationSettings(max_new_tokens=max_new_tokens or bench.max_new_tokens, do_sample=False)
            size = batch_size or getattr(bench, "batch_size", None) or DEFAULT_BATCH_SIZE
            generation = settings.model_dump()
            engine = getattr(getattr(adapter, "config", None), "engine", "transformers")
            if engine != "transformers":  # predictions of another engine are not reused (the default's key unchanged)
                generation["engine"] = engine
            signature = {"benchmark": task.name, "model": model_name, "model_fingerprint": fingerprint,
                         "generation": generation, "data": describe}
            if prompting:
                signature["prompting"] = prompting
            with cache_for(out) as cache:
                inputs = input_signature(describe, cache)
                changed, changed_paths = cache.changed_names(), [str(Path(p).resolve()) for p in cache.changed]
            if inputs is not None:
                signature["inputs"] = inputs
            _claim(bench_dir, signature, restart_stale, world, changed, samples, changed_paths,
                   all_changed=not cache.changed)

            done = set().union(*(completed_ids(p) for p in _prediction_files(bench_dir)))
            pending = [(i, s) for i, s in enumerate(samples) if s.id not in done]
            world.barrier()  # all processes split the same list: nobody writes before all have read
            shard_quarantine = quarantine if world.is_main else Quarantine(
                world.output(bench_dir / REJECTED), on_bad_record)
            _generate_share(adapter, task.name, list(world.mine(pending)), judge, settings, size,
                            world.output(bench_dir / PREDICTIONS), progress and world.is_main, shard_quarantine,
                            model_name, prompting.get("system_message"))
            shard_quarantine.close()
            world.barrier()
            if world.is_main:
                quarantine.close()
                rejected = _merge_rejected(bench_dir)
                left_out = {str(e.get("id")) for e in rejected if e.get("kind") == "bad_image"}
                scored = [s for s in samples if s.id not in left_out]
                records = merge_predictions(bench_dir, scored, judge)
                results[task.name] = _summary(task, judge, settings, size, scored, records, describe,
                                              n_rejected=len(rejected), prompting=prompting)
            world.barrier()
            failure = _failure(task.name, bench_dir, [s.id for s in samples], describe)
            if failure:
                raise EvaluationError(failure)
        finally:
            quarantine.close()

    report_path = out / REPORT
    if world.is_main:
        report = {
            "adamllm_version": __version__,
            "created": _now(),
            "model": model_name,
            "model_fingerprint": fingerprint,
            "backbone": getattr(adapter, "family", type(adapter).__name__),
            "seed": seed,
            "num_processes": world.size,
            "on_bad_record": on_bad_record,
            "benchmarks": results,
            "averages": domain_averages(results),
            **(extra or {}),
        }
        write_report(report, out)
    world.barrier()
    return json.loads(report_path.read_text(encoding="utf-8"))


# -- bad records ---------------------------------------------------------------------------
def _fresh_quarantine(bench_dir: Path, policy: str, world: World) -> Quarantine:
    """The benchmark's quarantine for this run: rejected.jsonl is rebuilt by every run (its samples
    have no prediction, so they are tried again); only the main process writes it."""
    if not world.is_main:
        return Quarantine(None, policy)  # the same records are rejected on every process: counted once
    for path in [bench_dir / REJECTED, *shards(bench_dir / REJECTED)]:
        path.unlink(missing_ok=True)
    return Quarantine(bench_dir / REJECTED, policy)


def _load_samples(bench, quarantine: Quarantine) -> list:
    try:
        takes_quarantine = "quarantine" in inspect.signature(bench.samples).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin, say)
        takes_quarantine = False
    return list(bench.samples(quarantine=quarantine) if takes_quarantine else bench.samples())


def _where(name: str, sample) -> str:
    """Where a sample came from: its record's file:line (or row) when its benchmark says, else its id."""
    return getattr(sample, "where", None) or f"{name} sample {sample.id!r}"


def _scoreable(name: str, samples: list, judge, quarantine: Quarantine) -> list:
    """The samples whose label the scorer reads (checked with an empty answer, before any
    generation); the others are bad records."""
    kept = []
    for index, sample in enumerate(samples):
        try:
            judge.score_sample(sample.record(""), index)
        except (KeyError, ValueError) as exc:
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            quarantine.reject(_where(name, sample), reason, kind="bad_label", record_id=sample.id)
            continue
        kept.append(sample)
    return kept


def _no_samples(name: str, describe: dict, quarantine: Quarantine) -> str:
    source = f" (source {describe['source']})" if describe.get("source") else ""
    if quarantine.total:
        where = f"; see {quarantine.path}" if quarantine.path else ""
        return f"benchmark {name!r}{source}: every sample was rejected ({quarantine.total}{where})"
    return f"benchmark {name!r}{source} has no samples"


def _read_rejected(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [entry for _, entry in iter_records(path, tolerant=True) if "where" in entry]


def _merge_rejected(bench_dir: Path) -> list[dict]:
    """Fold the other processes' rejected.rank<N>.jsonl into rejected.jsonl (``fold_shards``, as
    the data stages do; an entry every process made is kept once); its entries."""
    main = bench_dir / REJECTED
    entries = _read_rejected(main)
    if shards(main):
        seen = {(e["where"], e.get("reason")) for e in entries}
        for entry in fold_shards(main):
            if "where" in entry and (entry["where"], entry.get("reason")) not in seen:
                seen.add((entry["where"], entry.get("reason")))
                entries.append(entry)
        from ..io import write_jsonl

        write_jsonl(main, entries)
    return entries


def _failure(name: str, bench_dir: Path, sample_ids: list[str], describe: dict) -> str | None:
    """Why this benchmark's evaluation did not do its work (read from its files, so that every
    process raises alike), or None: no sample left after the images set aside, or the backbone
    refused every sample."""
    rejected = _read_rejected(bench_dir / REJECTED)
    left_out = {str(e.get("id")) for e in rejected if e.get("kind") == "bad_image"}
    scored = [i for i in sample_ids if i not in left_out]
    if not scored:
        source = f" (source {describe['source']})" if describe.get("source") else ""
        return (f"benchmark {name!r}{source}: every sample was rejected ({len(rejected)}; see "
                f"{bench_dir / REJECTED})")
    by_id = {str(r.get("id")): r for _, r in iter_records(bench_dir / PREDICTIONS, tolerant=True)} \
        if (bench_dir / PREDICTIONS).exists() else {}
    errors = [(i, by_id.get(i, {}).get("error")) for i in scored]
    if all(error for _, error in errors):
        first_id, first = errors[0]
        return (f"benchmark {name!r}: the backbone refused all {len(scored)} samples, the first "
                f"({first_id!r}) with {' '.join(str(first).split())} (predictions in {bench_dir / PREDICTIONS}; "
                f"fix the cause and rerun with --force)")
    return None


# -- generation ----------------------------------------------------------------------------
def load_model(adapter, model_name: str = "") -> None:
    """Load the adapter's model and processor now (adapters load them lazily), so that a checkpoint
    that cannot be loaded (a missing folder, another family's checkpoint) is one ``EvaluationError``
    and not a refusal of every sample. Adapters without these attributes are left alone."""
    for attribute in ("model", "processor"):
        try:
            getattr(adapter, attribute, None)
        except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
            from ..errors import friendly

            family = getattr(adapter, "family", type(adapter).__name__)
            what = f"model {model_name!r}" if model_name else "the model"
            if model_name.startswith((".", "/", "~")) and not Path(model_name).expanduser().exists():
                detail = f"no such folder {model_name}"
            else:
                detail = " ".join((friendly(exc) or str(exc)).split()) or type(exc).__name__
            raise EvaluationError(f"cannot load {what} with backbone {family!r}: {detail}") from exc


def _generate_share(adapter, name: str, share: list, judge, settings, batch_size: int, target: Path,
                    show_progress: bool, quarantine: Quarantine | None = None, model_name: str = "",
                    system_message: str | None = None) -> None:
    from tqdm.auto import tqdm

    from ..io import JsonlAppender

    if not share:
        return
    load_model(adapter, model_name)  # outside the per-sample handling: a load error stops the run
    with JsonlAppender(target) as writer, tqdm(total=len(share), desc=name, unit="sample",
                                               disable=not show_progress, leave=False) as bar:
        for start in range(0, len(share), batch_size):
            batch = share[start:start + batch_size]
            predictions, errors = generate_batch(adapter, [s for _, s in batch], settings, quarantine, name,
                                                 system_message)
            for (index, sample), prediction, error in zip(batch, predictions, errors):
                if prediction is not None:  # None: set aside (its image cannot be read)
                    writer.write(prediction_record(name, sample, prediction, judge, index, error))
            bar.update(len(batch))


def evaluation_settings(adapter) -> dict:
    """The adapter's evaluation settings (``use_evaluation_settings``, optional in the backbone
    contract: ``{}`` without it), which switches it to them: the system message put before every
    prompt and, for the Qwen-VL families, the image budget. Recorded in ``run.json`` (a rerun with
    other settings is refused like one with other generation settings) and in the report."""
    use = getattr(adapter, "use_evaluation_settings", None)
    return dict(use()) if callable(use) else {}


def evaluation_conversation(sample, system_message: str | None = None) -> list[dict]:
    """The conversation a sample is asked as: its prompt as the user turn, the image placeholder in
    front when the sample has an image and the prompt none, after ``system_message`` if given."""
    from ..backbone import IMAGE_PLACEHOLDER

    prompt = sample.prompt
    if sample.image is not None and IMAGE_PLACEHOLDER not in prompt:
        prompt = IMAGE_PLACEHOLDER + prompt
    turns = [{"role": "system", "content": system_message}] if system_message else []
    return turns + [{"role": "user", "content": prompt}]


def generate_batch(adapter, samples: list, settings, quarantine: Quarantine | None = None,
                   benchmark: str = "", system_message: str | None = None) -> tuple[list[str | None], list[str | None]]:
    """Answers for ``samples`` in one batch, and per sample its error (None: none).

    A sample whose image cannot be read (``open_image`` raises ``ValueError``/``OSError``: a corrupt,
    truncated or empty file, a decompression bomb) is a bad record: it goes to ``quarantine``
    (kind ``bad_image``; under ``on_bad_record: error`` that raises ``DataError`` naming the record;
    without a quarantine it raises ``DataError``) and its answer is None: it is not generated. A
    sample the backbone refuses (too long: a ``ValueError``) gets an empty answer and its error;
    the rest of the batch still runs. ``system_message``: see ``evaluation_conversation``."""
    predictions: list[str | None] = [None] * len(samples)
    errors: list[str | None] = [None] * len(samples)
    keep, conversations, images = [], [], []
    for position, sample in enumerate(samples):
        try:
            opened = [open_image(sample.image)] if sample.image is not None else []
        except (ValueError, OSError) as exc:
            reason = "unreadable image: " + (" ".join(str(exc).split()) or type(exc).__name__)
            where = _where(benchmark or "benchmark", sample)
            if quarantine is None:
                raise DataError(f"{where}: {reason}") from None
            quarantine.reject(where, reason, kind="bad_image", record_id=sample.id)
            continue
        keep.append(position)
        conversations.append(evaluation_conversation(sample, system_message))
        images.append(opened)
    if keep:
        answers, refusals = _answer(adapter, conversations, images, settings)
        for position, answer, refusal in zip(keep, answers, refusals):
            predictions[position], errors[position] = answer, refusal
    return predictions, errors


def _answer(adapter, conversations: list, images: list, settings) -> tuple[list[str], list[str | None]]:
    """The backbone's answers (``adamllm.generation.generate_all``, one length-sorted batch that
    out-of-memory errors split); on a ``ValueError`` each sample alone, so one refusal costs one
    sample: its answer is empty and its error is kept."""
    from ..generation import GenerationError, generate_all

    errors: list[str | None] = [None] * len(conversations)

    def refused(index: int, exc: Exception) -> None:
        errors[index] = f"{type(exc).__name__}: {exc}"

    try:
        answers = generate_all(adapter, list(zip(conversations, images)), settings,
                               batch_size=max(1, len(conversations)), method="generate", on_error=refused)
    except GenerationError as exc:
        raise EvaluationError(str(exc)) from None
    return ["" if a is None else a for a in answers], errors


def prediction_record(benchmark: str, sample, prediction: str, judge, index: int, error: str | None = None) -> dict:
    """One line of predictions.jsonl."""
    score = judge.score_sample(sample.record(prediction), index)
    record = {"id": sample.id, "benchmark": benchmark, "prompt": sample.prompt, "prediction": prediction,
              "label": sample.label, "score": score.value, "metric": score.metric}
    record.update({k: v for k, v in sample.fields.items() if k not in record})
    if isinstance(sample.image, (str, Path)):
        record["image"] = str(sample.image)
    if error:
        record["error"] = error
    return record


def _check_unique_ids(name: str, samples: list) -> None:
    seen: set[str] = set()
    for sample in samples:
        if sample.id in seen:
            raise EvaluationError(f"benchmark {name!r} has two samples with id {sample.id!r}")
        seen.add(sample.id)
