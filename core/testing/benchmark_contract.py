"""The benchmark contract suite: subclass it to prove a benchmark plugin works.

::

    from adamllm.testing.benchmark_contract import BenchmarkContract

    class TestMyBenchmark(BenchmarkContract):
        benchmark = "my_benchmark"                   # the registered component name
        options = {"source": "tests/data/my_bench"}  # its config options (fixture data)

It checks, without any model: the samples load (unique ids, prompts, labels, readable images,
JSON-serialisable fields), the scorer names itself (``scorer``, ``version``, ``metrics``), and
a known-correct prediction of every sample scores 100 on every metric. Override
``correct_prediction(sample)`` when the label itself is not a correct answer.
"""
from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest


class BenchmarkContract:
    """Checks a benchmark: samples, fields, scorer identity, and a perfect score for perfect answers."""

    benchmark: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}
    scorer: ClassVar[str | None] = None  # None: the benchmark's default scorer

    def correct_prediction(self, sample) -> str:
        """A prediction the scorer must count as fully correct (default: the label as text;
        ``(X)`` for a lettered multiple choice; names joined by commas for a list)."""
        label = sample.label
        if isinstance(label, (list, tuple)):
            return ", ".join(str(item) for item in label)
        if {"A", "B", "C", "D"} <= set(sample.fields) and str(label).strip().upper() in "ABCD":
            return f"({str(label).strip().upper()})"
        return str(label)

    # -- fixtures --------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def bench(cls):
        from adamllm.registry import PluginManager

        spec = PluginManager(strict=True).spec("benchmark", cls.benchmark)
        model = spec.load_config_model()
        if model is None:
            assert not cls.options, f"benchmark {cls.benchmark!r} takes no options"
            return spec.build()
        return spec.build(model(**cls.options))

    @pytest.fixture(scope="class")
    @classmethod
    def samples(cls, bench):
        return list(bench.samples())

    @pytest.fixture(scope="class")
    @classmethod
    def judge(cls, bench):
        return bench.get_scorer(cls.scorer, 0) if cls.scorer else bench.get_scorer(seed=0)

    # -- checks ----------------------------------------------------------------------------
    def test_is_a_benchmark(self, bench):
        from adamllm.benchmark import Benchmark

        assert isinstance(bench, Benchmark)
        assert bench.name == self.benchmark
        assert isinstance(bench.max_new_tokens, int) and bench.max_new_tokens > 0

    def test_samples_load(self, samples):
        from adamllm.benchmark import Sample, open_image

        assert samples, "the benchmark has no samples"
        ids = [s.id for s in samples]
        assert len(set(ids)) == len(ids), "sample ids must be unique"
        for sample in samples:
            assert isinstance(sample, Sample) and isinstance(sample.id, str)
            assert isinstance(sample.prompt, str) and sample.prompt.strip()
            assert sample.label is not None
            json.dumps(sample.record("an answer"))  # predictions.jsonl can hold it
        with_image = [s for s in samples if s.image is not None]
        if with_image:
            assert open_image(with_image[0].image).size[0] > 0

    def test_scorer_names_itself(self, judge):
        assert isinstance(judge.scorer, str) and judge.scorer
        assert isinstance(judge.version, str) and judge.version
        assert judge.metrics and all(isinstance(m, str) for m in judge.metrics)

    def test_correct_predictions_score_100(self, samples, judge):
        scores = [judge.score_sample(s.record(self.correct_prediction(s)), i) for i, s in enumerate(samples)]
        assert {score.metric for score in scores} <= set(judge.metrics)
        result = judge.aggregate(scores)
        for metric in {score.metric for score in scores}:
            assert result[metric] == pytest.approx(100.0, abs=1e-6), (metric, result)
