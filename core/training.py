"""The ``train`` stage: build the configured trainer and let it train the configured backbone.

The trainer reads the composed mix (``OUT/compose/mix.jsonl``, or ``data.train`` in the config)
and writes ``OUT/train/``: ``model/`` (a complete, reloadable directory), ``adapter/`` (LoRA),
``checkpoints/``, ``summary.json``, ``loss.jsonl``, ``loss_curve.png`` and ``run_info.json``.
"""
from __future__ import annotations


def run_train_stage(ctx) -> dict:
    trainer = ctx.component("trainer")
    return trainer.run(ctx)
