"""What a component of each pipeline kind must do, in terms of records and a stage context.

Core's stages (``adamllm.data_stages``, ``adamllm.training``, ``adamllm.evaluation``) call only
these methods, so any plugin that satisfies the protocol runs in the pipeline; reading inputs,
skipping finished records on a rerun, writing outputs and stats is the stage's job, not the
component's. ``adamllm.testing.stage_contract`` checks a component against its protocol. The
backbone contract is ``adamllm.backbone.Backbone`` and the benchmark's ``adamllm.benchmark.Benchmark``.

A component gets its own model, if it needs one, from a ``ModelSlot`` field of its options:
``ctx.build_model(self.config.model)`` (built once, on first use).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from .records import Failure, ImageCaptionPair, TaskTriplet, TrainingExample, Verdict
    from .runner import StageContext


@runtime_checkable
class Synthesizer(Protocol):
    """Writes at most one task triplet per image-caption pair (stage ``synthesize``).

    ``synthesize`` gets a batch of pairs (``batch_size`` of them, default 8) and returns one entry
    per pair, in order: a ``TaskTriplet`` (or a dict of one) whose ``id`` is the pair's, None when
    the pair yields no triplet, or a ``Failure`` when it could not be processed (the stage
    quarantines it with its reason; a stage whose every pair failed fails). Extra fields (the raw
    generation, say) are kept. Under ``--preview`` (``ctx.prompt_log`` set) a component that
    prompts a model records the exact prompts with ``ctx.record_prompts``. An optional
    ``stats`` dict attribute (why pairs got no triplet, tokens/s, ...) is added to ``stats.json``.
    """

    def synthesize(self, pairs: Sequence[ImageCaptionPair],
                   ctx: StageContext) -> Sequence[TaskTriplet | Failure | None]: ...


@runtime_checkable
class Filter(Protocol):
    """Labels each triplet ``yes`` / ``no`` / ``open`` (stage ``filter``; ``yes`` is kept).

    ``judge`` gets a batch of triplets and returns one ``Verdict`` per triplet, in order, with the
    triplet's ``id`` (``raw`` may hold the judge's own words). Optional: a ``stats`` dict attribute
    (counters of this run) and ``summarize(verdicts) -> dict`` (numbers over every verdict of the
    stage, resumed ones included, e.g. agreement with gold labels); both go into ``stats.json``.
    """

    def judge(self, triplets: Sequence[TaskTriplet], ctx: StageContext) -> Sequence[Verdict]: ...


@runtime_checkable
class Composer(Protocol):
    """Builds the training mix (stage ``compose``).

    ``compose`` gets every pair (in source order), the triplets and the verdicts by id, and yields
    ``TrainingExample`` records (ShareGPT ``messages`` + ``images``). It may set ``stats`` (a dict)
    that the stage adds to its summary. Same inputs and seed (``ctx.config.seed``): same output.
    The stage places the images in ``OUT/compose/images/`` and writes the mix in the forms its
    options' ``formats`` field names (``adamllm.mix_writers``; default ``DEFAULT_FORMATS``).
    """

    def compose(self, pairs: Iterable[ImageCaptionPair], triplets: Mapping[str, TaskTriplet],
                verdicts: Mapping[str, Verdict], ctx: StageContext) -> Iterable[TrainingExample]: ...


@runtime_checkable
class Trainer(Protocol):
    """Trains the ``backbone`` section's model (stage ``train``).

    ``run`` reads ``ctx.input_path()`` (the mix), trains ``ctx.backbone()``, writes a complete
    model directory to ``ctx.output_path()`` and returns a summary dict. ``ctx.force`` means start
    over; otherwise resume from its own checkpoints.
    """

    def run(self, ctx: StageContext) -> dict[str, Any]: ...


def members(protocol: type) -> set[str]:
    """The public attributes and methods a protocol asks for (its own and its bases')."""
    names: set[str] = set()
    for cls in protocol.__mro__:
        if cls.__module__ in ("typing", "builtins"):
            continue
        names |= {n for n in vars(cls) if not n.startswith("_")} | set(getattr(cls, "__annotations__", {}))
    return names


#: Kind name -> the protocol its components satisfy (backbone and benchmark live beside their data types).
PROTOCOLS: dict[str, str] = {
    "synthesizer": "adamllm.contracts:Synthesizer",
    "filter": "adamllm.contracts:Filter",
    "composer": "adamllm.contracts:Composer",
    "trainer": "adamllm.contracts:Trainer",
    "backbone": "adamllm.backbone:Backbone",
    "benchmark": "adamllm.benchmark:Benchmark",
}
