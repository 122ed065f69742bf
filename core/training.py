"""The ``train`` stage: build the configured trainer and let it train the configured backbone.

The trainer reads the composed mix (``OUT/compose/mix.jsonl``, or ``data.train`` in the config)
and writes ``OUT/train/``: ``model/`` (a complete, reloadable directory), ``adapter/`` (LoRA),
``checkpoints/``, ``summary.json``, ``loss.jsonl``, ``loss_curve.png`` and ``run_info.json``.
The stage then writes ``adamllm.json`` into ``model/`` and ``adapter/``: the backbone and the
image budget they were trained with, which ``adamllm eval`` and ``adamllm export`` carry on
(``adamllm.export``).
"""
from __future__ import annotations


def run_train_stage(ctx) -> dict:
    from .export import BUDGET_KEYS, write_model_settings
    from .distributed import World

    trainer = ctx.component("trainer")
    summary = trainer.run(ctx)
    backbone = ctx.config.backbone
    if World().is_main and backbone is not None:
        budget = {k: getattr(backbone.options, k, None) for k in BUDGET_KEYS}
        source = ctx.config.source or "a config built in code"
        for sub in ("model", "adapter"):
            folder = ctx.stage_dir / sub
            if folder.is_dir():
                write_model_settings(folder, backbone.type, budget, f"the train stage of {source}")
    return summary
