"""What is evaluated (``EvalTask``: a benchmark and its domain) and the error evaluation stops with."""
from __future__ import annotations

from dataclasses import dataclass

from ..benchmark import Benchmark


class EvaluationError(RuntimeError):
    """Evaluation cannot go on or did not do its work: stale predictions, a sample without a
    prediction, a model that cannot be loaded, a benchmark with no sample to score (none at all,
    or every one rejected), a benchmark whose every sample the backbone refused."""


@dataclass
class EvalTask:
    """A benchmark to evaluate, with the domain it belongs to (for the domain averages)."""

    benchmark: Benchmark
    domain: str | None = None

    @property
    def name(self) -> str:
        return self.benchmark.name
