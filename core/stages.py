"""The one table of pipeline stages and component kinds; everything else is derived from it.

The config models (``adamllm.config``), the CLI's stage and kind lists, the JSON Schema, the
``data:`` keys, the runner and the stage fingerprints all read ``STAGE_TABLE`` and ``KIND_TABLE``.
Adding a stage or a kind is one row here plus its implementation. Import-light (no pydantic, no
torch): the CLI reads these tables while listing plugins.
"""
from __future__ import annotations

from dataclasses import dataclass


class StageError(RuntimeError):
    """A stage cannot run (missing input, missing config section, failed work)."""


@dataclass(frozen=True)
class Kind:
    """A component kind: registered through ``adamllm_<name>s``, selected in config ``section``."""

    name: str
    section: str
    many: bool = False  # the section is a list of selections (benchmarks)

    @property
    def hook(self) -> str:
        return f"adamllm_{self.name}s"


#: Component kinds, in pipeline order.
KIND_TABLE: tuple[Kind, ...] = (
    Kind("domain", "domain"),
    Kind("synthesizer", "synthesizer"),
    Kind("filter", "filter"),
    Kind("composer", "composer"),
    Kind("backbone", "backbone"),
    Kind("trainer", "trainer"),
    Kind("benchmark", "benchmarks", many=True),
)


@dataclass(frozen=True)
class Stage:
    """One pipeline stage.

    ``kind``: the component kind it runs; ``reads``: the record type of its input (``module:Class``
    in ``adamllm.records``); ``output``: what it writes under ``OUT/<name>/`` for later stages;
    ``inputs``: the earlier stages whose outputs it reads (the first is its default input, which
    ``data.<name>`` in the config replaces); ``depends_on``: the config sections (or parts of one,
    ``synthesizer.model``) its result depends on (its fingerprint, with its inputs' identity); ``run``: ``module:function(ctx)``.
    """

    name: str
    kind: str
    reads: str
    output: str
    inputs: tuple[str, ...]
    depends_on: tuple[str, ...]
    run: str


STAGE_TABLE: tuple[Stage, ...] = (
    Stage("tune", "trainer", "TrainingExample", "model", (),
          ("synthesizer.model", "synthesizer.profile", "synthesizer.prompt_format", "synthesizer.tuning", "trainer"),
          "adamllm.plugins.synthesis.tuning:run_tune_stage"),
    Stage("synthesize", "synthesizer", "ImageCaptionPair", "triplets.jsonl", (),
          ("domain", "synthesizer"), "adamllm.data_stages:run_synthesize_stage"),
    Stage("filter", "filter", "TaskTriplet", "verdicts.jsonl", ("synthesize",),
          ("filter",), "adamllm.data_stages:run_filter_stage"),
    Stage("compose", "composer", "TaskTriplet", "mix.jsonl", ("synthesize", "filter"),
          ("domain", "composer"), "adamllm.data_stages:run_compose_stage"),
    Stage("train", "trainer", "TrainingExample", "model", ("compose",),
          ("backbone", "trainer"), "adamllm.training:run_train_stage"),
    Stage("evaluate", "benchmark", "Prediction", "report.json", ("train",),
          ("backbone", "benchmarks"), "adamllm.evaluation:run_evaluate_stage"),
)

STAGES: tuple[str, ...] = tuple(stage.name for stage in STAGE_TABLE)
KINDS: tuple[str, ...] = tuple(kind.name for kind in KIND_TABLE)
#: Config section -> component kind.
SECTIONS: dict[str, str] = {kind.section: kind.name for kind in KIND_TABLE}


def stage(name: str) -> Stage:
    for row in STAGE_TABLE:
        if row.name == name:
            return row
    raise StageError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")


def kind(name: str) -> Kind:
    for row in KIND_TABLE:
        if row.name == name:
            return row
    raise ValueError(f"unknown component kind {name!r}; kinds: {', '.join(KINDS)}")
