"""Benchmark scorers for the 8 evaluation tasks (pure Python, no model).

`legacy` reproduces the paper's metric code with its quirks, so its numbers are comparable with the
paper's; `strict` fixes the quirks. Always report which scorer (and `version`) produced a number.
"""
from .records import read_prediction_file, required_fields
from .scorer import (BENCHMARKS, METRICS, SCORERS, BenchmarkScorer, SampleScore, get_scorer,
                     score_records)

__all__ = [
    "BENCHMARKS", "METRICS", "SCORERS", "BenchmarkScorer", "SampleScore", "get_scorer",
    "read_prediction_file", "required_fields", "score_records",
]
