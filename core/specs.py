"""Typed records that plugins return from the registration hooks.

A spec names a component and says how to build it, without building it: ``factory`` and
``config`` may be ``"package.module:Attr"`` strings, resolved only when the component is used,
so discovering plugins never imports torch or transformers.
"""
from __future__ import annotations

import importlib
import re
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

from .stages import KINDS  # noqa: E402,F401 - component kinds, in pipeline order (one hook each)


def resolve(target: str | Any) -> Any:
    """Import ``"package.module:Attr"`` (or return a non-string target unchanged)."""
    if not isinstance(target, str):
        return target
    module_name, sep, attr = target.partition(":")
    if not sep or not attr:
        raise ValueError(f"expected 'package.module:Attr', got {target!r}")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class ComponentSpec:
    """One named component contributed by a plugin.

    ``factory`` builds the component: ``factory(config)`` where ``config`` is an instance of the
    ``config`` model (a pydantic model with ``extra="forbid"``), or ``factory()`` when there is none.
    """

    kind: ClassVar[str] = ""
    name: str
    factory: str | Callable[..., Any]
    config: str | type | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"invalid {self.kind} name {self.name!r}: use lower-case letters, digits, '_', '.', '-'"
            )

    def load_factory(self) -> Callable[..., Any]:
        return resolve(self.factory)

    def load_config_model(self) -> type | None:
        """The pydantic model for this component's options (imported on first use)."""
        return resolve(self.config) if self.config is not None else None

    def build(self, config: Any = None) -> Any:
        factory = self.load_factory()
        component = factory(config) if self.config is not None else factory()
        if component is None:
            target = self.factory if isinstance(self.factory, str) else getattr(self.factory, "__qualname__", "factory")
            raise ValueError(f"{self.kind} {self.name!r}: its factory {target} returned None instead of the component")
        try:  # remembered, so that an error inside it can name its plugin (PluginManager.blame)
            BUILT[component] = self
        except TypeError:  # not weak-referenceable or not hashable: found by its module instead
            pass
        return component


#: Every component built by ``ComponentSpec.build`` -> its spec (held weakly).
BUILT: "weakref.WeakKeyDictionary[Any, ComponentSpec]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class BackboneSpec(ComponentSpec):
    """A model adapter (see ``adamllm.backbone.Backbone``).

    ``tiny``: optional ``"module:function"`` with signature ``(out_dir, size="tiny", seed=0) -> Path``
    that writes a small randomly initialised checkpoint offline (``adamllm tiny NAME DIR``).
    """

    kind: ClassVar[str] = "backbone"
    tiny: str | Callable[..., Any] | None = None


@dataclass(frozen=True)
class SynthesizerSpec(ComponentSpec):
    """Writes task triplets for image-caption pairs (stage ``synthesize``)."""

    kind: ClassVar[str] = "synthesizer"


@dataclass(frozen=True)
class FilterSpec(ComponentSpec):
    """Judges task triplets Yes / No / Open (stage ``filter``)."""

    kind: ClassVar[str] = "filter"


@dataclass(frozen=True)
class ComposerSpec(ComponentSpec):
    """Composes the training mix from pairs, triplets and verdicts (stage ``compose``)."""

    kind: ClassVar[str] = "composer"


@dataclass(frozen=True)
class TrainerSpec(ComponentSpec):
    """Trains a backbone on a composed mix (stage ``train``)."""

    kind: ClassVar[str] = "trainer"


@dataclass(frozen=True)
class BenchmarkSpec(ComponentSpec):
    """An evaluation task: records, prompts, generation settings and scoring (stage ``evaluate``)."""

    kind: ClassVar[str] = "benchmark"
    domain: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    """Where a domain's image-caption pairs come from, and how to read them.

    ``location``: a local path, ``"package:relative/path"`` (a file shipped inside a Python package)
    or ``"hf://datasets/OWNER/NAME/FILE"`` (a hub dataset file). ``format``: ``sharegpt`` (the
    released layout, read by core) or any name a plugin reads itself with ``reader``: a
    ``"module:function"`` (or callable)
    ``reader(path, stats=None, image_root=None) -> Iterable[(where, ImageCaptionPair)]``
    (``stats``: an ``adamllm.pairs.PairStats`` to count what was read and skipped; ``image_root``:
    the image folder the run config names, passed only when it names one).

    Images: with the domain section's ``images`` (or ``data.synthesize.images``) the records'
    image paths resolve under that folder; without, beside the file, else in its sibling
    ``images/`` folder, the released layout (``adamllm.pairs.PairImages``). A hub file is
    downloaded alone, so a hub source needs ``images`` naming where its images were unzipped.
    """

    name: str
    format: str
    location: str
    description: str = ""
    reader: str | Callable[..., Any] | None = None


@dataclass(frozen=True)
class DomainSpec(ComponentSpec):
    """A field (biomedicine, food, ...): its image-caption sources, benchmarks and defaults.

    A domain needs no factory: it is data. ``defaults`` are run-config sections used when a run
    config selects the domain but leaves a section out.
    """

    kind: ClassVar[str] = "domain"
    factory: str | Callable[..., Any] = "builtins:dict"
    benchmarks: tuple[str, ...] = ()
    sources: tuple[SourceSpec, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)


SPEC_TYPES: dict[str, type[ComponentSpec]] = {
    cls.kind: cls
    for cls in (DomainSpec, SynthesizerSpec, FilterSpec, ComposerSpec, BackboneSpec, TrainerSpec, BenchmarkSpec)
}
