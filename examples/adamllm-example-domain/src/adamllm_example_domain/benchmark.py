"""The ``shapes_vqa`` benchmark: four questions about coloured shapes, shipped as package data.

It shows the whole benchmark contract: a pydantic config, samples with images, generation
settings, and a scorer that reports which rule produced its number.
"""
from __future__ import annotations

import json
import re
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

from adamllm.benchmark import Sample, SampleScore, mean_by_metric


class ShapesVQAConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int | None = Field(None, ge=1, description="Use only the first N samples.")
    max_new_tokens: int = Field(16, ge=1, description="Answer length budget.")


class ExactMatchScorer:
    """1 when the prediction's words contain the label's words in order, else 0.

    A record it cannot score (a prediction that is not a string, a label that is not a non-empty
    string) raises ``ValueError``: adamllm sets such a sample aside before generating
    (``on_bad_record``), and ``adamllm score`` names its line, rather than scoring ``"None"``.
    """

    benchmark = "shapes_vqa"
    scorer = "exact"
    version = "exact-1"
    metrics = ("accuracy",)

    def score_sample(self, record: dict, index: int = 0) -> SampleScore:
        prediction, label = record["prediction"], record["label"]
        if not isinstance(prediction, str):
            raise ValueError(f"prediction must be a string, got {type(prediction).__name__}")
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"label must be a non-empty string, got {label!r}")
        words = re.findall(r"[a-z0-9]+", prediction.lower())
        label = re.findall(r"[a-z0-9]+", label.lower())
        hit = any(words[i : i + len(label)] == label for i in range(len(words) - len(label) + 1))
        return SampleScore("accuracy", float(bool(label) and hit))

    def aggregate(self, scores):
        return mean_by_metric(scores, self.metrics)


class ShapesVQA:
    name = "shapes_vqa"
    #: What each record of a predictions file needs for ``adamllm score shapes_vqa FILE`` (optional;
    #: this is the default).
    prediction_fields = ("prediction", "label")

    def __init__(self, config: ShapesVQAConfig | None = None) -> None:
        self.config = config or ShapesVQAConfig()
        self.max_new_tokens = self.config.max_new_tokens

    def samples(self) -> list[Sample]:
        data = resources.files("adamllm_example_domain") / "data"
        rows = [json.loads(line) for line in (data / "shapes_vqa.jsonl").read_text().splitlines() if line.strip()]
        rows = rows[: self.config.limit] if self.config.limit else rows
        return [
            Sample(id=r["id"], prompt=r["input"], label=r["label"], image=str(data / r["image"]),
                   fields={"answer_type": r["answer_type"]})
            for r in rows
        ]

    def get_scorer(self, scorer: str = "exact", seed: int = 0) -> ExactMatchScorer:
        return ExactMatchScorer()
