"""The evaluation runner: generate an answer per benchmark sample, score it, report.

``evaluate(adapter, benchmarks, out_dir, ...)`` writes, per benchmark, ``OUT/<benchmark>/``:

- ``predictions.jsonl``: one line per sample (``id``, ``benchmark``, ``prompt``, ``prediction``,
  ``label``, ``score``, ``metric``, the benchmark's fields, ``image`` when it is a path, ``error``
  when the backbone refused the sample), appended batch by batch, so a rerun skips finished samples;
- ``run.json``: what the predictions were made with (model, generation settings, data). A rerun with
  a different model or settings is refused (``force``/``restart_stale`` start over instead);

and ``OUT/report.json``, ``report.md`` and ``report.png`` (``adamllm.reports``).

Generation is greedy with each benchmark's ``max_new_tokens``; the prompt is the sample's with the
image placeholder in front (unless the prompt already holds one). Data parallel: under
``accelerate launch`` (or torchrun) each process takes a contiguous share of the unfinished samples
(``PartialState.split_between_processes``) and appends to its own ``predictions.rank<N>.jsonl``; after
a barrier the main process merges the shards into ``predictions.jsonl`` in sample order, rescores
every sample with the requested scorer and writes the report. Scores in the report always come from
rescoring the stored predictions, so a rerun with another scorer reports that scorer's numbers.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from . import __version__
from .benchmark import Benchmark, open_image
from .io import DataError, completed_ids, write_jsonl

DEFAULT_BATCH_SIZE = 8
PREDICTIONS = "predictions.jsonl"
RUN_FILE = "run.json"
#: run.json keys that must match for finished predictions to be reused.
SIGNATURE_KEYS = ("model", "model_fingerprint", "generation", "data")


class EvaluationError(RuntimeError):
    """Evaluation cannot go on (stale predictions, a sample without a prediction, ...)."""


@dataclass
class EvalTask:
    """A benchmark to evaluate, with the domain it belongs to (for the domain averages)."""

    benchmark: Benchmark
    domain: str | None = None

    @property
    def name(self) -> str:
        return self.benchmark.name


# -- the runner ----------------------------------------------------------------------------
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
    progress: bool = True,
) -> dict:
    """Evaluate ``adapter`` on ``benchmarks``; returns the report (also written under ``out_dir``).

    ``scorer`` None: each benchmark's own default (``legacy`` for the built-ins, or the scorer its
    config names); a benchmark that does not know the requested name decides (it may raise).
    ``batch_size`` None: the benchmark's ``batch_size`` attribute if it has one, else 8.
    """
    from .backbone import GenerationSettings
    from .reports import write_report

    state = process_state()
    out = Path(out_dir)
    tasks = [b if isinstance(b, EvalTask) else EvalTask(b, getattr(b, "domain", None) or None) for b in benchmarks]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise EvaluationError(f"a benchmark is listed twice: {', '.join(names)}")
    fingerprint = model_fingerprint(model_name)
    results: dict[str, dict] = {}
    for task in tasks:
        bench = task.benchmark
        samples = list(bench.samples())
        if limit is not None:
            samples = samples[:limit]
        _check_unique_ids(task.name, samples)
        judge = bench.get_scorer(scorer, seed) if scorer else bench.get_scorer(seed=seed)
        settings = GenerationSettings(max_new_tokens=max_new_tokens or bench.max_new_tokens, do_sample=False)
        size = batch_size or getattr(bench, "batch_size", None) or DEFAULT_BATCH_SIZE
        describe = bench.describe() if hasattr(bench, "describe") else {}
        bench_dir = out / task.name
        signature = {"benchmark": task.name, "model": model_name, "model_fingerprint": fingerprint,
                     "generation": settings.model_dump(), "data": describe}
        _claim(bench_dir, signature, restart_stale, state)

        done = set().union(*(completed_ids(p) for p in _prediction_files(bench_dir)))
        pending = [(i, s) for i, s in enumerate(samples) if s.id not in done]
        state.wait_for_everyone()  # all processes split the same list: nobody writes before all have read
        target = bench_dir / (PREDICTIONS if state.num_processes == 1 else f"predictions.rank{state.process_index}.jsonl")
        with state.split_between_processes(pending) as mine:
            _generate_share(adapter, task.name, mine, judge, settings, size, target,
                            progress and state.is_main_process)
        state.wait_for_everyone()
        if state.is_main_process:
            records = merge_predictions(bench_dir, samples, judge)
            results[task.name] = _summary(task, judge, settings, size, samples, records, describe)
        state.wait_for_everyone()

    report_path = out / "report.json"
    if state.is_main_process:
        report = {
            "adamllm_version": __version__,
            "created": _now(),
            "model": model_name,
            "model_fingerprint": fingerprint,
            "backbone": getattr(adapter, "family", type(adapter).__name__),
            "seed": seed,
            "num_processes": state.num_processes,
            "benchmarks": results,
            "averages": domain_averages(results),
        }
        write_report(report, out)
    state.wait_for_everyone()
    return json.loads(report_path.read_text(encoding="utf-8"))


def _generate_share(adapter, name: str, share: list, judge, settings, batch_size: int, target: Path,
                    show_progress: bool) -> None:
    from tqdm.auto import tqdm

    from .io import JsonlAppender

    if not share:
        return
    with JsonlAppender(target) as writer, tqdm(total=len(share), desc=name, unit="sample",
                                               disable=not show_progress, leave=False) as bar:
        for start in range(0, len(share), batch_size):
            batch = share[start:start + batch_size]
            predictions, errors = generate_batch(adapter, [s for _, s in batch], settings)
            for (index, sample), prediction, error in zip(batch, predictions, errors):
                writer.write(prediction_record(name, sample, prediction, judge, index, error))
            bar.update(len(batch))


def generate_batch(adapter, samples: list, settings) -> tuple[list[str], list[str | None]]:
    """Answers for ``samples`` in one batch; a sample the backbone refuses (too long, bad image:
    a ``ValueError``) gets an empty answer and its error, the rest of the batch still runs."""
    from .backbone import IMAGE_PLACEHOLDER

    conversations, images = [], []
    for sample in samples:
        prompt = sample.prompt
        if sample.image is not None and IMAGE_PLACEHOLDER not in prompt:
            prompt = IMAGE_PLACEHOLDER + prompt
        conversations.append([{"role": "user", "content": prompt}])
        images.append([open_image(sample.image)] if sample.image is not None else [])
    try:
        answers = adapter.generate(conversations, images, settings)
    except ValueError as exc:
        if len(samples) == 1:
            return [""], [f"{type(exc).__name__}: {exc}"]
        predictions, errors = [], []
        for sample in samples:
            answer, error = generate_batch(adapter, [sample], settings)
            predictions += answer
            errors += error
        return predictions, errors
    if len(answers) != len(samples):
        raise EvaluationError(f"the backbone returned {len(answers)} answers for {len(samples)} prompts")
    return [str(a) for a in answers], [None] * len(samples)


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


# -- files: claim, merge -------------------------------------------------------------------
def _prediction_files(bench_dir: Path) -> list[Path]:
    return [bench_dir / PREDICTIONS, *sorted(bench_dir.glob("predictions.rank*.jsonl"))]


def _read_records(path: Path) -> list[dict]:
    """The records of a predictions file; an unreadable line (a crash's torn tail) is skipped,
    as ``completed_ids`` skips it, so that sample is generated again."""
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "id" in record:
                records.append(record)
    return records


def _claim(bench_dir: Path, signature: dict, restart_stale: bool, state) -> None:
    """Refuse (or, with ``restart_stale``, delete) predictions made with other settings."""
    run_file = bench_dir / RUN_FILE
    stale = []
    if run_file.exists():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        stale = [key for key in SIGNATURE_KEYS if previous.get(key) != signature.get(key)]
    has_predictions = any(p.exists() for p in _prediction_files(bench_dir))
    if stale and has_predictions and not restart_stale:
        raise EvaluationError(
            f"{bench_dir} holds predictions made with a different {', '.join(stale)}; "
            f"rerun with --force to discard them, or choose another output directory"
        )
    state.wait_for_everyone()  # every process has read the old state before it changes
    if state.is_main_process:
        if stale and restart_stale:
            for path in _prediction_files(bench_dir):
                path.unlink(missing_ok=True)
        bench_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_file.with_name(RUN_FILE + ".tmp")
        tmp.write_text(json.dumps(signature, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, run_file)
    state.wait_for_everyone()


def discard_predictions(out_dir: str | os.PathLike, names: Iterable[str]) -> None:
    """Delete the predictions (and run.json) of these benchmarks, to start over."""
    state = process_state()
    if state.is_main_process:
        for name in names:
            for path in [*_prediction_files(Path(out_dir) / name), Path(out_dir) / name / RUN_FILE]:
                path.unlink(missing_ok=True)
    state.wait_for_everyone()


def merge_predictions(bench_dir: Path, samples: list, judge) -> list[dict]:
    """Merge the shards into predictions.jsonl in sample order and rescore every sample with
    ``judge``; returns the records of ``samples``. Lines of ids that are not in ``samples`` (an
    earlier run with a larger limit) stay at the end of the file, unscored."""
    by_id: dict[str, dict] = {}
    for path in _prediction_files(bench_dir):
        for record in _read_records(path):
            by_id.setdefault(str(record["id"]), record)
    ordered = []
    for index, sample in enumerate(samples):
        record = by_id.pop(sample.id, None)
        if record is None:
            raise EvaluationError(f"{bench_dir.name}: no prediction for sample {sample.id!r}")
        try:
            score = judge.score_sample(record, index)
        except (KeyError, ValueError) as exc:
            raise DataError(f"{bench_dir / PREDICTIONS}: sample {sample.id!r}: {exc}") from None
        record["score"], record["metric"] = score.value, score.metric
        ordered.append(record)
    records = ordered + list(by_id.values())
    main = bench_dir / PREDICTIONS
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if not main.exists() or main.read_text(encoding="utf-8") != text:
        write_jsonl(main, records)
    for shard in _prediction_files(bench_dir)[1:]:
        shard.unlink()
    return ordered


# -- the report ----------------------------------------------------------------------------
def _summary(task: EvalTask, judge, settings, batch_size: int, samples: list, records: list[dict],
             describe: dict) -> dict:
    from .benchmark import SampleScore

    aggregate = judge.aggregate([SampleScore(r["metric"], r["score"]) for r in records])
    return {
        "domain": task.domain,
        "scorer": judge.scorer,
        "scorer_version": judge.version,
        "scores": {m: aggregate[m] for m in judge.metrics if m in aggregate},
        "counts": {m: aggregate[f"n_{m}"] for m in judge.metrics if f"n_{m}" in aggregate},
        "n_samples": len(samples),
        "n_errors": sum(1 for r in records if r.get("error")),
        "generation": settings.model_dump(),
        "batch_size": batch_size,
        "data": describe,
        "predictions": f"{task.name}/{PREDICTIONS}",
    }


def domain_averages(results: Mapping[str, dict]) -> dict:
    """Per domain: the unweighted mean of its metric columns (e.g. biomed: SLAKE open and closed,
    PathVQA open and closed, VQA-RAD open and closed, PMC-VQA), with the columns it averaged."""
    columns: dict[str, list[tuple[str, float]]] = {}
    for name, result in results.items():
        if result.get("domain"):
            for metric, value in result["scores"].items():
                columns.setdefault(result["domain"], []).append((f"{name}/{metric}", value))
    return {domain: {"value": sum(v for _, v in cols) / len(cols), "columns": [c for c, _ in cols]}
            for domain, cols in columns.items()}


def model_fingerprint(model: str) -> str | None:
    """For a local checkpoint folder: a hash of its weight files' names, sizes and times, so that
    predictions of a retrained model at the same path are not taken for finished ones."""
    path = Path(model).expanduser() if model else None
    if path is None or not path.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(path.iterdir()):
        if file.suffix in (".safetensors", ".bin", ".json") and file.is_file():
            stat = file.stat()
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _check_unique_ids(name: str, samples: list) -> None:
    seen: set[str] = set()
    for sample in samples:
        if sample.id in seen:
            raise EvaluationError(f"benchmark {name!r} has two samples with id {sample.id!r}")
        seen.add(sample.id)


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def process_state():
    """accelerate's process state. CPU processes need ``cpu=True`` to form a (gloo) group: set by
    ``ACCELERATE_USE_CPU=1`` (as ``Accelerator`` reads it), or implied by several processes and no GPU."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    cpu = parse_flag_from_env("ACCELERATE_USE_CPU")
    if not cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch

        cpu = not torch.cuda.is_available()
    return PartialState(cpu=cpu)


def per_process_device(device: str) -> str:
    """Under data parallelism each process loads its model on its own GPU (``cuda`` -> ``cuda:<local rank>``)."""
    state = process_state()
    if state.num_processes > 1 and device == "cuda":
        return f"cuda:{state.local_process_index}"
    return device


# -- building what to evaluate (shared by ``adamllm eval`` and the ``evaluate`` stage) -----
def expand_names(pm, names: Iterable[str]) -> list[str]:
    """Benchmark names, where a domain name stands for the domain's benchmarks."""
    domains = pm.components("domain")
    out: list[str] = []
    for name in names:
        expanded = list(domains[name].spec.benchmarks) if name in domains and name not in pm.components("benchmark") else [name]
        out += [n for n in expanded if n not in out]
    return out


def build_task(pm, name: str, options: Mapping[str, Any] | Any = None, required: Iterable[str] = ()) -> EvalTask:
    """Build benchmark ``name``; ``options`` is its validated config, or a dict of options of
    which those its config model does not have are left out (``limit`` for a benchmark without
    one, say), except the ``required`` ones: a benchmark that does not take them is an error."""
    spec = pm.spec("benchmark", name)
    model = spec.load_config_model()
    if model is not None and isinstance(options, model):
        return EvalTask(spec.build(options), spec.domain)
    fields = getattr(model, "model_fields", {}) if model is not None else {}
    refused = [key for key in required if key not in fields]
    if refused:
        raise ValueError(f"benchmark {name!r} takes no option {', '.join(refused)}")
    if model is None:
        return EvalTask(spec.build(), spec.domain)
    return EvalTask(spec.build(model.model_validate({k: v for k, v in (options or {}).items() if k in fields})),
                    spec.domain)


def rebase_source(options: Any, base_dir: Path | None) -> Any:
    """A relative ``source`` in a run config is relative to the config file's folder."""
    source = getattr(options, "source", None)
    if base_dir is None or not isinstance(source, str) or Path(source).is_absolute():
        return options
    candidate = base_dir / source
    return options.model_copy(update={"source": str(candidate)}) if candidate.exists() else options


# -- the pipeline stage ----------------------------------------------------------------------
def stage_model(ctx) -> str | None:
    """The model the stage evaluates: ``data.evaluate`` if set, else the trained model
    ``OUT/train/model`` if it exists, else None (the backbone section's ``model``)."""
    given = ctx.config.data.get("evaluate")
    if given:
        return given
    trained = ctx.output_path("train")
    return str(trained) if trained.exists() else None


def run_evaluate_stage(ctx) -> dict:
    """The ``evaluate`` stage of ``adamllm run``: the config's benchmarks (or the domain's defaults)."""
    from .config import Section, _validate_section
    from .runner import StageError

    cfg = ctx.config
    if cfg.backbone is None:
        raise StageError("stage 'evaluate' needs a 'backbone' section in the config")
    base_dir = Path(cfg.source).resolve().parent if cfg.source else None
    sections = list(cfg.benchmarks)
    if not sections:
        if cfg.domain is None:
            raise StageError("stage 'evaluate' needs 'benchmarks' in the config, or a 'domain' whose defaults name them")
        domain = ctx.plugins.spec("domain", cfg.domain.type)
        problems = []
        for i, raw in enumerate(domain.defaults.get("benchmarks", [])):
            raw = {"type": raw} if isinstance(raw, str) else raw
            component, errs = _validate_section(ctx.plugins, "benchmark", Section(**raw),
                                                ("domain", cfg.domain.type, "defaults", "benchmarks", i))
            sections.append(component)
            problems += errs
        if problems:
            raise StageError("invalid domain defaults: " + "; ".join(f"{loc}: {msg}" for loc, msg in problems))
        if not sections:
            raise StageError(f"domain {cfg.domain.type!r} names no default benchmarks; list 'benchmarks' in the config")
    tasks = []
    for section in sections:
        options = rebase_source(section.options, base_dir) if section.options is not None else None
        tasks.append(build_task(ctx.plugins, section.type, options))

    process_state()  # before the model loads: with one process per GPU, "cuda" is this process's GPU
    model = stage_model(ctx)
    adapter = ctx.backbone(model)  # None: the backbone section's model (a `tiny` one is built if missing)
    model_name = model or str(getattr(getattr(adapter, "config", None), "model", "") or cfg.backbone.options.model)
    out = ctx.stage_dir
    if getattr(ctx, "force", False):  # adamllm run --force: start over
        discard_predictions(out, [t.name for t in tasks])
    report = evaluate(adapter, tasks, out, seed=cfg.seed, model_name=model_name, restart_stale=True)
    return {
        "report": str(ctx.output_path()),
        "model": model_name,
        "scores": {name: result["scores"] for name, result in report["benchmarks"].items()},
    }
