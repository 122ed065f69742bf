"""The toy world's benchmarks: held-out domain questions in the public layouts, existing scorers.

* ``toyshapes_vqa``: open and closed (yes/no) questions (``image``, ``input``, ``label``,
  ``answer_type``), scored like SLAKE / PathVQA / VQA-RAD: open token recall and closed accuracy
  under ``legacy``, exact match and first yes/no word under ``strict``;
* ``toyshapes_choice``: 4-way multiple choice (``A``..``D``, a letter as ``label``), scored like
  PMC-VQA.

Both read a generated world's ``benchmark/`` files (``source``: ``vqa.jsonl`` or ``choice.jsonl``,
or the folder); ``adamllm.domains.toyshapes.demo_world`` writes them.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from adamllm.paths import PathOrHubId

from ..benchmarks import CustomVQABenchmark, LayoutBenchmarkConfig, PMCVQABenchmark

#: The labels are a word or a letter, but a post-trained model answers in a sentence (the
#: composed mix teaches informative answers, which state the fact first): 32 tokens hold one.
MAX_NEW_TOKENS = 32


class ToyShapesConfig(LayoutBenchmarkConfig):
    source: PathOrHubId = Field(description="A generated world's benchmark file (world/benchmark/vqa.jsonl or "
                                            "choice.jsonl; relative to the config file).")

    @model_validator(mode="after")
    def _local(self) -> "ToyShapesConfig":
        if not Path(self.source).expanduser().exists():
            raise ValueError(f"no benchmark file at {self.source!r}: generate the toy world first "
                             f"(adamllm.domains.toyshapes.demo_world)")
        return self


class ToyShapesVQABenchmark(CustomVQABenchmark):
    """Open and yes/no questions about held-out domain shapes."""

    name = "toyshapes_vqa"
    domain = "toyshapes"
    default_max_new_tokens = MAX_NEW_TOKENS


class ToyShapesChoiceBenchmark(PMCVQABenchmark):
    """4-way multiple-choice questions (shape kind, colour) about held-out domain shapes."""

    name = "toyshapes_choice"
    domain = "toyshapes"
    hub_id = ""
    hub_config = ""
    default_max_new_tokens = MAX_NEW_TOKENS

    def get_scorer(self, scorer: str | None = None, seed: int = 0):
        from ..scoring import get_scorer

        return get_scorer("pmc_vqa", scorer or self.config.scorer, seed)  # PMC-VQA's choice rules
