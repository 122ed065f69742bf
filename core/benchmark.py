"""What a benchmark component is: samples to answer, generation settings, and scorers.

The evaluation runner asks a benchmark for its samples, generates one answer per sample with a
backbone adapter, and scores each answer with the benchmark's scorer; reports name the scorer.
Import-light: no torch here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Protocol, runtime_checkable


class SampleScore(NamedTuple):
    """One sample's contribution: the metric it counts toward and its value in [0, 1]."""

    metric: str
    value: float


@runtime_checkable
class Scorer(Protocol):
    """Scores predictions. ``record`` has ``prediction`` and ``label`` plus benchmark fields."""

    benchmark: str
    scorer: str
    version: str
    metrics: tuple[str, ...]

    def score_sample(self, record: dict, index: int = 0) -> SampleScore: ...

    def aggregate(self, scores: list[SampleScore]) -> dict: ...


@dataclass
class Sample:
    """One benchmark question: its prompt, its image (loaded on demand) and its label."""

    id: str
    prompt: str
    label: Any
    image: Any = None  # a PIL image, a path, or the bytes of an encoded image (see ``open_image``)
    fields: dict[str, Any] = field(default_factory=dict)

    def record(self, prediction: str) -> dict:
        """The dict a scorer reads: prediction, label and the benchmark's own fields."""
        return {"id": self.id, "prediction": prediction, "label": self.label, **self.fields}


def open_image(image: Any):
    """A PIL image from what ``Sample.image`` holds: a PIL image, a path, or encoded bytes (None: None).

    Benchmarks with many images keep paths or bytes, so images are decoded one batch at a time.
    Decoded completely and checked by ``adamllm.images.open_image``: an unusable image raises
    ``adamllm.images.BadImage`` (a ``ValueError``) naming the file.
    """
    if image is None:
        return None
    from .images import open_image as _open_image

    return _open_image(image)


@runtime_checkable
class Benchmark(Protocol):
    """The component an ``adamllm_benchmarks`` spec builds.

    Optional, read with ``getattr`` (so not part of the protocol check): ``prediction_fields``, the
    fields every record of a predictions file needs for ``adamllm score`` (default
    ``DEFAULT_PREDICTION_FIELDS``; see ``prediction_fields()``).
    """

    name: str
    max_new_tokens: int

    def samples(self) -> Iterable[Sample]: ...

    def get_scorer(self, scorer: str = "legacy", seed: int = 0) -> Scorer: ...


#: The record fields a benchmark's scorer reads when the benchmark names none (``prediction_fields``).
DEFAULT_PREDICTION_FIELDS: tuple[str, ...] = ("prediction", "label")


def prediction_fields(benchmark: Any) -> tuple[str, ...]:
    """The fields every prediction record of ``benchmark`` needs: its ``prediction_fields``
    attribute, else ``DEFAULT_PREDICTION_FIELDS``."""
    return tuple(getattr(benchmark, "prediction_fields", None) or DEFAULT_PREDICTION_FIELDS)


class ScoreError(ValueError):
    """A scorer gave a score that is not a finite number in [0, 1]: never written or averaged."""


class CheckedScorer:
    """A benchmark's scorer whose every score and aggregate is checked before it is used.

    One NaN sample score (a plugin scorer dividing by an empty label list, say) makes the
    benchmark's mean NaN, and ``json.dumps`` writes it as ``NaN``, which is not even JSON: the
    report would look finished and hold no result. A bad sample score is a ``ScoreError`` (a
    ``ValueError``: before generation the evaluator sets that sample aside as a bad label; after,
    it stops naming the scorer and the sample); other attributes are the scorer's own."""

    def __init__(self, judge: Any, benchmark: str) -> None:
        self._judge, self._benchmark = judge, benchmark

    def __getattr__(self, name: str) -> Any:
        return getattr(self._judge, name)

    def _who(self) -> str:
        return f"benchmark {self._benchmark!r}, scorer {getattr(self._judge, 'scorer', type(self._judge).__name__)!r}"

    def score_sample(self, record: dict, index: int = 0) -> SampleScore:
        score = self._judge.score_sample(record, index)
        try:
            value = float(score[1])
        except (TypeError, ValueError, IndexError):
            value = math.nan
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ScoreError(f"{self._who()}: sample {record.get('id', index)!r} was scored {score!r}; a score must "
                             f"be a finite number in [0, 1]")
        return score

    def aggregate(self, scores: list[SampleScore]) -> dict:
        result = self._judge.aggregate(scores)
        bad = {k: v for k, v in result.items() if isinstance(v, float) and not math.isfinite(v)}
        if bad:
            raise ScoreError(f"{self._who()}: aggregate gave {bad}; no result with a NaN or infinite score is saved")
        return result


def mean_by_metric(scores: Iterable[SampleScore], metrics: Iterable[str]) -> dict[str, float | int]:
    """``{metric: mean × 100, n_<metric>: count}`` for the metrics that have samples."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for metric, value in scores:
        sums[metric] = sums.get(metric, 0.0) + value
        counts[metric] = counts.get(metric, 0) + 1
    out: dict[str, float | int] = {}
    for metric in metrics:
        if counts.get(metric):
            out[metric] = 100.0 * sums[metric] / counts[metric]
            out[f"n_{metric}"] = counts[metric]
    return out
