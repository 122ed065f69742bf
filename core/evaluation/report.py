"""A benchmark's entry in the report, and the per-domain averages of the report's columns."""
from __future__ import annotations

from typing import Mapping

from .predictions import PREDICTIONS
from .task import EvalTask


def _summary(task: EvalTask, judge, settings, batch_size: int, samples: list, records: list[dict],
             describe: dict, n_rejected: int = 0, prompting: dict | None = None) -> dict:
    """``n_samples``: the samples scored; ``n_errors``: those the backbone refused (scored as empty
    answers); ``n_rejected``: the bad records set aside in ``rejected.jsonl``, not scored;
    ``prompting``: the backbone's evaluation settings (system message, image budget), when it has any."""
    from ..benchmark import SampleScore
    from ..quarantine import REJECTED

    aggregate = judge.aggregate([SampleScore(r["metric"], r["score"]) for r in records])
    return {
        "domain": task.domain,
        "scorer": judge.scorer,
        "scorer_version": judge.version,
        "scores": {m: aggregate[m] for m in judge.metrics if m in aggregate},
        "counts": {m: aggregate[f"n_{m}"] for m in judge.metrics if f"n_{m}" in aggregate},
        "n_samples": len(samples),
        "n_errors": sum(1 for r in records if r.get("error")),
        "n_rejected": n_rejected,
        **({"rejected": f"{task.name}/{REJECTED}"} if n_rejected else {}),
        "generation": settings.model_dump(),
        **({"prompting": dict(prompting)} if prompting else {}),
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


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")
