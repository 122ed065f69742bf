"""What is evaluated (``EvalTask``: a benchmark and its domain) and the error evaluation stops with."""
from __future__ import annotations

from dataclasses import dataclass

from ..benchmark import Benchmark


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
