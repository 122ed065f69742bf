"""Building benchmarks by name (shared by ``adamllm eval`` and ``adamllm run``) and the ``evaluate`` stage."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..distributed import World
from .loop import evaluate
from .predictions import discard_predictions
from .task import EvalTask


def expand_names(pm, names: Iterable[str]) -> list[str]:
    """Benchmark names, where a domain name stands for the domain's benchmarks."""
    domains = pm.components("domain")
    out: list[str] = []
    for name in names:
        expanded = list(domains[name].spec.benchmarks) if name in domains and name not in pm.components("benchmark") else [name]
        out += [n for n in expanded if n not in out]
    return out


def build_task(pm, name: str, options: Mapping[str, Any] | Any = None, required: Iterable[str] = ()) -> EvalTask:
    """Build benchmark ``name``; ``options`` is its validated config, or a dict of options of
    which those its config model does not have are left out (``limit`` for a benchmark without
    one, say), except the ``required`` ones: a benchmark that does not take them is an error."""
    spec = pm.spec("benchmark", name)
    model = spec.load_config_model()
    if model is not None and isinstance(options, model):
        return EvalTask(spec.build(options), spec.domain)
    fields = getattr(model, "model_fields", {}) if model is not None else {}
    refused = [key for key in required if key not in fields]
    if refused:
        raise ValueError(f"benchmark {name!r} takes no option {', '.join(refused)}")
    if model is None:
        return EvalTask(spec.build(), spec.domain)
    return EvalTask(spec.build(model.model_validate({k: v for k, v in (options or {}).items() if k in fields})),
                    spec.domain)


def stage_model(ctx) -> str | None:
    """The model the stage evaluates: ``data.evaluate`` if set, else the trained model
    ``OUT/train/model`` if it exists, else None (the backbone section's ``model``)."""
    given = ctx.config.data.get("evaluate")
    if given:
        return given
    trained = ctx.output_path("train")
    return str(trained) if trained.exists() else None


def run_evaluate_stage(ctx) -> dict:
    """The ``evaluate`` stage of ``adamllm run``: the config's benchmarks (or the domain's defaults)."""
    from ..config import validate_section
    from ..stages import StageError

    cfg = ctx.config
    if cfg.backbone is None:
        raise StageError("stage 'evaluate' needs a 'backbone' section in the config")
    sections = list(cfg.benchmarks)
    if not sections:
        if cfg.domain is None:
            raise StageError("stage 'evaluate' needs 'benchmarks' in the config, or a 'domain' whose defaults name them")
        domain = ctx.plugins.spec("domain", cfg.domain.type)
        problems = []
        for i, raw in enumerate(domain.defaults.get("benchmarks", [])):
            raw = {"type": raw} if isinstance(raw, str) else raw
            component, errs = validate_section(ctx.plugins, "benchmark", raw,
                                               ("domain", cfg.domain.type, "defaults", "benchmarks", i),
                                               cfg.source.parent if cfg.source else None)
            sections.append(component)
            problems += errs
        if problems:
            raise StageError("invalid domain defaults: " + "; ".join(f"{loc}: {msg}" for loc, msg in problems))
        if not sections:
            raise StageError(f"domain {cfg.domain.type!r} names no default benchmarks; list 'benchmarks' in the config")
    tasks = [build_task(ctx.plugins, section.type, section.options) for section in sections]

    World()  # before the model loads: with one process per GPU, "cuda" is this process's GPU
    model = stage_model(ctx)
    adapter = ctx.backbone(model)  # None: the backbone section's model (a `tiny` one is built if missing)
    model_name = model or str(getattr(getattr(adapter, "config", None), "model", "") or cfg.backbone.options.model)
    out = ctx.stage_dir
    if ctx.force:  # a changed config, or adamllm run --force: start over
        discard_predictions(out, [t.name for t in tasks])
    report = evaluate(adapter, tasks, out, seed=cfg.seed, model_name=model_name, restart_stale=True,
                      on_bad_record=cfg.on_bad_record)
    rejected = {name: result["n_rejected"] for name, result in report["benchmarks"].items()
                if result.get("n_rejected")}
    return {
        "report": str(ctx.output_path()),
        "model": model_name,
        "scores": {name: result["scores"] for name, result in report["benchmarks"].items()},
        **({"rejected": rejected} if rejected else {}),
    }
