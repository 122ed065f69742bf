"""The pipeline runner: synthesize → filter → compose → train → evaluate.

Stages exchange typed records (``adamllm.records``) through files under the output directory::

    OUT/synthesize/triplets.jsonl   OUT/filter/verdicts.jsonl   OUT/compose/mix.jsonl
    OUT/train/...                   OUT/evaluate/...

A stage that finished writes ``OUT/<stage>/_done.json``; a rerun skips it (``force`` reruns it).
A stage reads its input from the previous stage's file, or from ``data.<stage>`` in the config,
so any stage can run alone. Stage implementations register in ``STAGE_FUNCTIONS``.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .config import STAGES, RunConfig
from .registry import PluginManager
from .specs import resolve

#: The file each stage writes for the next one (relative to OUT/<stage>/).
STAGE_OUTPUTS = {
    "synthesize": "triplets.jsonl",
    "filter": "verdicts.jsonl",
    "compose": "mix.jsonl",
    "train": "model",
    "evaluate": "report.json",
}


class StageError(RuntimeError):
    """A stage cannot run (missing input, missing config section)."""


class StageNotAvailable(StageError):
    """The stage has no implementation in this version of adamllm."""


@dataclass
class StageContext:
    """What a stage implementation gets: the validated config, plugins and its own folder."""

    name: str
    config: RunConfig
    plugins: PluginManager
    summary: dict[str, Any] = field(default_factory=dict)
    force: bool = False  # rerun from scratch (no resuming from this stage's checkpoints)

    @property
    def output_dir(self) -> Path:
        return self.config.output_dir

    @property
    def stage_dir(self) -> Path:
        path = self.config.output_dir / self.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def output_path(self, stage: str | None = None) -> Path:
        stage = stage or self.name
        return self.config.output_dir / stage / STAGE_OUTPUTS[stage]

    def input_path(self, previous_stage: str) -> Path:
        """The config's ``data.<this stage>`` if given, else the previous stage's output."""
        override = self.config.data.get(self.name)
        path = Path(override) if override else self.output_path(previous_stage)
        if not path.exists():
            hint = f"set data.{self.name} in the config" if not override else "check data." + self.name
            raise StageError(
                f"stage {self.name!r} needs {path}, which does not exist: run stage "
                f"{previous_stage!r} first or {hint}"
            )
        return path

    def backbone(self, model: str | None = None) -> Any:
        """The configured backbone adapter, for ``model`` if given (e.g. the trained model).

        With ``tiny: SIZE`` in the backbone section, a missing checkpoint folder is built first
        (relative to the config file), so a demo config runs on a fresh machine offline.
        """
        selection = self.config.backbone
        if selection is None:
            raise StageError(f"stage {self.name!r} needs a 'backbone' section in the config")
        spec = self.plugins.spec("backbone", selection.type)
        options = selection.options
        update: dict[str, Any] = {}
        if model is not None:
            update["model"] = str(model)
        elif getattr(options, "tiny", None):
            path = Path(options.model)
            if not path.is_absolute() and self.config.source is not None:
                path = (self.config.source.parent / path).resolve()
            if not path.exists():
                if spec.tiny is None:
                    raise StageError(f"backbone {selection.type!r} has no tiny builder; set a real model")
                resolve(spec.tiny)(path, size=options.tiny, seed=self.config.seed)
            update["model"] = str(path)
        elif self.config.source is not None and (self.config.source.parent / options.model).exists():
            update["model"] = str(self.config.source.parent / options.model)
        if update:
            options = options.model_copy(update=update)
        return spec.build(options)

    def component(self, section: str, kind: str | None = None) -> Any:
        """Build the component selected in ``section`` of the config."""
        selection = getattr(self.config, section)
        if selection is None:
            raise StageError(f"stage {self.name!r} needs a {section!r} section in the config")
        spec = self.plugins.spec(kind or section, selection.type)
        return spec.build(selection.options)


StageFunction = Callable[[StageContext], dict]


def _not_available(stage: str, issue: str) -> StageFunction:
    def run(ctx: StageContext) -> dict:
        raise StageNotAvailable(f"stage {stage!r} is not available yet in adamllm: it arrives with {issue}")

    return run


#: Stage name -> implementation (a function, or "module:function" imported when the stage runs).
STAGE_FUNCTIONS: dict[str, StageFunction | str] = {
    "synthesize": _not_available("synthesize", "the task-synthesis stage"),
    "filter": _not_available("filter", "the consistency-filter stage"),
    "compose": _not_available("compose", "the mix-composition stage"),
    "train": "adamllm.training:run_train_stage",
    "evaluate": "adamllm.evaluate:run_evaluate_stage",
}


def done_marker(output_dir: Path, stage: str) -> Path:
    return output_dir / stage / "_done.json"


def run_pipeline(
    config: RunConfig,
    plugins: PluginManager,
    stages: list[str] | None = None,
    *,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Run ``stages`` (default: the config's) in pipeline order; returns each stage's summary."""
    wanted = stages or config.stages
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise StageError(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}")
    config.output_dir.mkdir(parents=True, exist_ok=True)
    summaries: dict[str, dict] = {}
    for stage in (s for s in STAGES if s in wanted):
        marker = done_marker(config.output_dir, stage)
        if marker.exists() and not force:
            echo(f"[{stage}] already done ({marker}); skipping (use --force to rerun)")
            summaries[stage] = json.loads(marker.read_text())
            continue
        echo(f"[{stage}] running")
        started = time.time()
        ctx = StageContext(stage, config, plugins, force=force)
        summary = resolve(STAGE_FUNCTIONS[stage])(ctx) or {}
        summary = {**ctx.summary, **summary, "seconds": round(time.time() - started, 3)}
        if os.environ.get("RANK", "0") == "0":  # one writer under multi-process launchers
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps(summary, indent=2, default=str))
        summaries[stage] = summary
        echo(f"[{stage}] done in {summary['seconds']} s")
    return summaries
