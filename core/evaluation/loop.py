"""The runner: generate each benchmark's unfinished samples in batches, then merge, rescore, report."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..benchmark import Benchmark, open_image
from ..io import completed_ids
from .distributed import process_state
from .predictions import PREDICTIONS, _claim, _prediction_files, merge_predictions, model_fingerprint
from .report import _now, _summary, domain_averages
from .task import EvalTask, EvaluationError

DEFAULT_BATCH_SIZE = 8


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
    from ..backbone import GenerationSettings
    from ..reports import write_report

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

    from ..io import JsonlAppender

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
    from ..backbone import IMAGE_PLACEHOLDER

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


def _check_unique_ids(name: str, samples: list) -> None:
    seen: set[str] = set()
    for sample in samples:
        if sample.id in seen:
            raise EvaluationError(f"benchmark {name!r} has two samples with id {sample.id!r}")
        seen.add(sample.id)
