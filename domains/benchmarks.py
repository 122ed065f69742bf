"""The eight built-in benchmarks: records in the public layout, prompts, generation budget, scorers.

Every benchmark reads the public layout (see ``adamllm.domains.layout``): by default its config of
the public hub copy, or a local folder given as ``source``. The prompt is the record's ``input`` as
is (plus an optional ``prompt_suffix``); the evaluation runner puts the image placeholder in front
of it. Generation is greedy with a per-task budget of new tokens (``default_max_new_tokens``: the
reference code's budgets, docs/method.md §9, so numbers are comparable with the paper's; a
benchmark section's ``max_new_tokens`` overrides it). Scoring is
``adamllm.domains.scoring`` (``legacy``: as the paper computed its numbers; ``strict``: quirks fixed).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from adamllm.benchmark import Sample
from adamllm.io import DataError
from adamllm.paths import PathOrHubId

from .layout import is_local, read_layout
from .scoring import get_scorer
from .scoring.scorer import PMC_LETTERS
from .scoring.vocabulary import food101_classes

BIOMED_HUB = "AdaptLLM/biomed-VQA-benchmark"
FOOD_HUB = "AdaptLLM/food-VQA-benchmark"

#: The reference code's budgets of new tokens (greedy decoding; docs/method.md §9): 1024 for SLAKE,
#: PathVQA, VQA-RAD, PMC-VQA and Recipe1M; 256 for Nutrition5K, Food101 and FoodSeg103, where the
#: reference lowered 1024 to stop runaway repetition. Generation stops at the end-of-turn token, so a
#: short answer costs no more under a large budget.
REFERENCE_BUDGET, CAPPED_BUDGET = 1024, 256


class LayoutBenchmarkConfig(BaseModel):
    """Options of every built-in benchmark (a ``benchmarks`` entry of a run config)."""

    model_config = ConfigDict(extra="forbid")
    source: Optional[PathOrHubId] = Field(
        None, description="A local folder (or file) in the public layout (relative to the config file), or a hub dataset id; "
        "default: the benchmark's config of the public AdaptLLM hub copy.")
    config_name: Optional[str] = Field(None, description="Hub config name (default: the benchmark's own).")
    split: str = Field("test", description="Hub split.")
    revision: Optional[str] = Field(None, description="Hub revision (branch, tag or commit).")
    limit: Optional[int] = Field(None, ge=1, description="Use only the first N records.")
    max_new_tokens: Optional[int] = Field(None, ge=1, description="Answer budget (default: the benchmark's own).")
    prompt_suffix: str = Field("", description="Text appended to every prompt (default: none, prompts as released).")
    scorer: Literal["legacy", "strict"] = Field(
        "legacy", description="legacy: the paper's rules and quirks (comparable with the paper); strict: quirks fixed.")
    batch_size: Optional[int] = Field(None, ge=1, description="Generation batch size (default: the runner's).")


@dataclass
class LayoutSample(Sample):
    """A sample with the place of its record (``file:line`` or ``... row N``), for the messages and
    the ``rejected.jsonl`` entries that name it (an image that cannot be read, say)."""

    where: Optional[str] = None


class LayoutBenchmark:
    """A benchmark in the public layout; subclasses set the class attributes."""

    name: ClassVar[str] = ""
    domain: ClassVar[str] = ""
    hub_id: ClassVar[str] = ""
    hub_config: ClassVar[str] = ""
    default_max_new_tokens: ClassVar[int] = REFERENCE_BUDGET
    #: Record fields the scorer reads beside ``prediction`` and ``label``.
    extra_fields: ClassVar[tuple[str, ...]] = ()
    #: The fields every record of a predictions file needs (``adamllm score``; the benchmark contract).
    prediction_fields: ClassVar[tuple[str, ...]] = ("prediction", "label")

    def __init__(self, config: LayoutBenchmarkConfig | None = None) -> None:
        self.config = config or LayoutBenchmarkConfig()
        self.max_new_tokens = self.config.max_new_tokens or self.default_max_new_tokens
        self.batch_size = self.config.batch_size

    @property
    def source(self) -> str:
        return self.config.source or self.hub_id

    def describe(self) -> dict:
        """Where the records come from, for reports."""
        local = is_local(self.source)
        out = {"source": str(Path(self.source).expanduser().resolve()) if local else self.source}
        if not local:
            out.update(config_name=self.config.config_name or self.hub_config, split=self.config.split)
        if self.config.prompt_suffix:
            out["prompt_suffix"] = self.config.prompt_suffix
        return out

    def _source_name(self) -> str:
        if is_local(self.source):
            return str(Path(self.source).expanduser())
        return f"{self.source} [{self.config.config_name or self.hub_config}/{self.config.split}]"

    def samples(self, quarantine: Any = None) -> list[Sample]:
        """The records as samples; every record is checked before any generation: it reads (valid
        JSON, the fields, an image reference that can be used), its prompt is text, its id is new,
        and its label is what the scorer reads (``adamllm.domains.scoring``). A bad record goes to
        ``quarantine.reject`` (``adamllm.quarantine.Quarantine``: under ``skip`` set aside in its
        ``rejected.jsonl`` and counted, under ``error`` a ``DataError`` naming it); without a
        quarantine it raises ``DataError`` naming its file and line (or row). A source without
        any record, or whose every record was rejected, is a ``DataError`` naming the source."""
        judge = self.get_scorer()
        samples: list[Sample] = []
        seen: dict[str, str] = {}
        rejected = 0

        def bad(where: str, reason: str, kind: str = "bad_record", record_id: str | None = None) -> None:
            nonlocal rejected
            if quarantine is None:
                raise DataError(f"{where}: {reason}")
            rejected += 1
            quarantine.reject(where, reason, kind=kind, record_id=record_id)

        for record in read_layout(self.source, config_name=self.config.config_name or self.hub_config,
                                  split=self.config.split, limit=self.config.limit,
                                  required=("image", "input", "label", *self.extra_fields),
                                  revision=self.config.revision, on_error=bad):
            data = record.data
            sample_id = str(data["id"]) if data.get("id") is not None else str(record.index)
            if sample_id in seen:
                bad(record.where, f"duplicate id {sample_id!r} (first at {seen[sample_id]})", "duplicate_id",
                    sample_id)
                continue
            if not isinstance(data["input"], str) or not data["input"].strip():
                bad(record.where, f"input (the prompt) must be a non-empty string, got {data['input']!r:.60}",
                    record_id=sample_id)
                continue
            try:
                sample = LayoutSample(id=sample_id, prompt=data["input"] + self.config.prompt_suffix,
                                      label=self.label(data["label"]), image=record.image,
                                      fields=self.fields(data, record.where), where=record.where)
                judge.score_sample(sample.record(""), record.index)
            except (KeyError, ValueError) as exc:
                reason = str(exc)
                reason = reason[len(record.where) + 2:] if reason.startswith(f"{record.where}: ") else reason
                bad(record.where, reason, "bad_label", sample_id)
                continue
            seen[sample_id] = record.where
            samples.append(sample)
        if not samples:
            if rejected:
                raise DataError(f"{self._source_name()}: every record was rejected ({rejected}; see "
                                f"{getattr(quarantine, 'path', None) or 'rejected.jsonl'}): benchmark {self.name!r} "
                                f"has no sample left")
            raise DataError(f"{self._source_name()}: no records: benchmark {self.name!r} has no samples")
        return samples

    def label(self, value):
        return value

    def fields(self, data: dict, where: str) -> dict:
        return {name: data[name] for name in self.extra_fields}

    def get_scorer(self, scorer: str | None = None, seed: int = 0):
        return get_scorer(self.name, scorer or self.config.scorer, seed)


class _VQABenchmark(LayoutBenchmark):
    domain = "biomed"
    hub_id = BIOMED_HUB
    extra_fields = ("answer_type",)
    prediction_fields = ("prediction", "label", "answer_type")

    def fields(self, data: dict, where: str) -> dict:
        kind = str(data["answer_type"]).strip().upper()
        if kind not in ("OPEN", "CLOSED"):
            raise DataError(f"answer_type must be OPEN or CLOSED, got {data['answer_type']!r}")
        return {"answer_type": kind}


class SlakeBenchmark(_VQABenchmark):
    """SLAKE: radiology VQA, open (token recall) and closed (yes/no accuracy) questions."""

    name = "slake"
    hub_config = "SLAKE"


class PathVQABenchmark(_VQABenchmark):
    """PathVQA: pathology VQA. Loads the PathVQA config (the reference code scored VQA_RAD by mistake)."""

    name = "pathvqa"
    hub_config = "PathVQA"


class VQARadBenchmark(_VQABenchmark):
    """VQA-RAD: radiology VQA, open and closed questions."""

    name = "vqa_rad"
    hub_config = "VQA_RAD"


class PMCVQABenchmark(LayoutBenchmark):
    """PMC-VQA: 4-way multiple choice over figures from PubMed Central (options in ``A``..``D``)."""

    name = "pmc_vqa"
    domain = "biomed"
    hub_id = BIOMED_HUB
    hub_config = "PMC-VQA"
    extra_fields = PMC_LETTERS
    prediction_fields = ("prediction", "label", *PMC_LETTERS)

    def label(self, value):
        return value.strip() if isinstance(value, str) else value  # the scorer names any other type

    def fields(self, data: dict, where: str) -> dict:
        return {letter: str(data[letter]) for letter in PMC_LETTERS}


class _FoodBenchmark(LayoutBenchmark):
    domain = "food"
    hub_id = FOOD_HUB


class Recipe1MBenchmark(_FoodBenchmark):
    """Recipe1M: write the recipe of the dish; ROUGE-L F against the reference recipe."""

    name = "recipe1m"
    hub_config = "Recipe1M"


class Nutrition5KBenchmark(_FoodBenchmark):
    """Nutrition5K: list the ingredients; per-sample recall over the ingredient vocabulary."""

    name = "nutrition5k"
    hub_config = "Nutrition5K"
    default_max_new_tokens = CAPPED_BUDGET


class Food101Benchmark(_FoodBenchmark):
    """Food101: pick the dish among 101 classes; accuracy (label: the class name)."""

    name = "food101"
    hub_config = "Food101"
    default_max_new_tokens = CAPPED_BUDGET

    def label(self, value):
        """The class name with spaces ("beet_salad" and 5 become "beet salad"); other values are
        kept, and the scoreability check names their record."""
        classes = food101_classes()
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(classes):
            return classes[value]
        if not isinstance(value, str):
            return value
        name = value.strip().replace("_", " ").lower()
        return name if name in classes else value


class FoodSeg103Benchmark(_FoodBenchmark):
    """FoodSeg103: name the food categories in the image; per-sample F1 over classes 1..102."""

    name = "foodseg103"
    hub_config = "FoodSeg103"
    default_max_new_tokens = CAPPED_BUDGET


BENCHMARK_CLASSES: dict[str, type[LayoutBenchmark]] = {
    cls.name: cls for cls in (SlakeBenchmark, PathVQABenchmark, VQARadBenchmark, PMCVQABenchmark,
                              Recipe1MBenchmark, Nutrition5KBenchmark, Food101Benchmark, FoodSeg103Benchmark)
}

#: The answer budget of each built-in benchmark (the reference code's).
DEFAULT_MAX_NEW_TOKENS = {name: cls.default_max_new_tokens for name, cls in BENCHMARK_CLASSES.items()}


class CustomVQAConfig(LayoutBenchmarkConfig):
    source: PathOrHubId = Field(description="Your VQA set: a local folder (JSONL/parquet + images) or a hub dataset id.")


class CustomVQABenchmark(_VQABenchmark):
    """Your own VQA set in the public layout (``image``, ``input``, ``label``, ``answer_type``),
    scored like SLAKE / PathVQA / VQA-RAD: open token recall and closed yes/no accuracy."""

    name = "vqa"
    domain = ""
    hub_id = ""

    def get_scorer(self, scorer: str | None = None, seed: int = 0):
        return get_scorer("vqa_rad", scorer or self.config.scorer, seed)  # the three VQA sets share rules
