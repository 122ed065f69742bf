"""The contract between adamllm and its plugins.

A plugin is a module (or object) with functions decorated by ``@adamllm.hookimpl`` and named
after the hooks below. It is found through the entry-point group ``adamllm``::

    # pyproject.toml of a plugin package
    [project.entry-points.adamllm]
    adamllm-my-domain = "adamllm_my_domain.plugin"

Registration hooks return typed records (``adamllm.specs``) and must stay cheap: return specs
whose ``factory``/``config`` are ``"module:Attr"`` strings and import heavy libraries only when
the component is built. Specs evolve only by adding optional fields.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import click

    from .specs import (
        BackboneSpec,
        BenchmarkSpec,
        ComposerSpec,
        DomainSpec,
        FilterSpec,
        SynthesizerSpec,
        TrainerSpec,
    )

hookspec = pluggy.HookspecMarker("adamllm")


@hookspec
def adamllm_domains() -> list[DomainSpec]:
    """Domains this plugin contributes: image-caption sources, benchmarks and defaults of a field.

    Example::

        @hookimpl
        def adamllm_domains():
            return [DomainSpec(name="food", description="Food", benchmarks=("food101",))]
    """


@hookspec
def adamllm_synthesizers() -> list[SynthesizerSpec]:
    """Visual instruction synthesizers: write task triplets for image-caption pairs.

    Example: ``[SynthesizerSpec(name="adamllm", factory="pkg.synth:Synth", config="pkg.synth:Cfg")]``
    """


@hookspec
def adamllm_filters() -> list[FilterSpec]:
    """Consistency filters: label each task triplet ``yes`` / ``no`` / ``open``.

    Example: ``[FilterSpec(name="consistency", factory="pkg.filter:Judge", config="pkg.filter:Cfg")]``
    """


@hookspec
def adamllm_composers() -> list[ComposerSpec]:
    """Composers: turn pairs, kept triplets and verdicts into the training mix (stage ``compose``).

    Example: ``[ComposerSpec(name="adamllm", factory="pkg.mix:Composer", config="pkg.mix:Cfg")]``
    """


@hookspec
def adamllm_backbones() -> list[BackboneSpec]:
    """Backbone adapters: load, tokenise, collate, generate and save one model family.

    Example: ``[BackboneSpec(name="qwen2_vl", factory="pkg.qwen:Adapter", config="pkg.qwen:Cfg")]``
    """


@hookspec
def adamllm_trainers() -> list[TrainerSpec]:
    """Trainers: post-train a backbone on a composed mix.

    Example: ``[TrainerSpec(name="sft", factory="pkg.sft:Trainer", config="pkg.sft:Cfg")]``
    """


@hookspec
def adamllm_benchmarks() -> list[BenchmarkSpec]:
    """Benchmarks: records, prompts, generation settings and scorers of one evaluation task.

    Example: ``[BenchmarkSpec(name="slake", domain="biomed", factory="pkg.vqa:Slake", config=...)]``
    """


@hookspec
def adamllm_register_commands(cli: click.Group) -> None:
    """Add commands to the ``adamllm`` command line.

    Called once, when a command that is not built in is looked up (or ``--help`` lists them)::

        @hookimpl
        def adamllm_register_commands(cli):
            @cli.command()
            def hello():
                click.echo("hello")
    """
