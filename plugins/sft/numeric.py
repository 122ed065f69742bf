"""Numeric sanity while training: stop at the first non-finite loss or gradient, never save NaN.

A diverging run (too high a learning rate, an fp overflow, a poisoned batch) otherwise trains on
for hours with NaN weights, checkpoints them and writes a "completed" model. Checking is cheap:
the loss is already read back every step, the gradient norm comes from clipping, and weights are
checked only when they are about to be written. Every refusal is a ``NonFiniteError`` (a
``TrainerError``): one line naming the step, so the command exits non-zero and the stage never
records itself as done.
"""
from __future__ import annotations

import math

import torch

from .fsdp import local


class NonFiniteError(RuntimeError):
    """Training met a NaN or infinite value; the message names the step."""


def where(step: int, stage: int, stages: int, epoch: int) -> str:
    staged = f", stage {stage + 1}/{stages}" if stages > 1 else ""
    return f"step {step} (epoch {epoch + 1}{staged})"


def check_loss(value: float, accelerator, at: str) -> None:
    """Stop when this step's loss is NaN or infinite on any process (all processes stop together)."""
    bad = not math.isfinite(value)
    if accelerator.num_processes > 1:
        flag = torch.tensor([1.0 if bad else 0.0], device=accelerator.device)
        bad = bool(accelerator.reduce(flag, reduction="sum").item() > 0)
    if bad:
        shown = value if not math.isfinite(value) else "non-finite on another process"
        raise NonFiniteError(f"training stopped at {at}: the loss is {shown}; nothing of this step was applied "
                             f"and no model was saved (lower trainer.learning_rate, set max_grad_norm, or try "
                             f"mixed_precision: bf16 instead of fp16)")


def check_grad_norm(norm, at: str) -> None:
    """Stop when the gradient norm (before clipping) is NaN or infinite: the step would write NaN weights."""
    value = float(norm)
    if not math.isfinite(value):
        raise NonFiniteError(f"training stopped at {at}: the gradient norm is {value}; the step was not applied "
                             f"and no model was saved (lower trainer.learning_rate)")


def check_weights(model, what: str, accelerator=None) -> None:
    """Refuse to write ``what`` when a trainable weight is NaN or infinite (names the first such
    tensor). Sharded weights are checked part by part, and every process refuses together."""
    bad = None
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad and not bool(torch.isfinite(local(param)).all()):
                bad = name
                break
    if accelerator is not None and accelerator.num_processes > 1:
        flag = torch.tensor([1.0 if bad else 0.0], device=accelerator.device)
        if float(accelerator.reduce(flag, reduction="sum")[0]) and bad is None:
            bad = "(on another process)"
    if bad is not None:
        raise NonFiniteError(f"not writing {what}: weight {bad} holds NaN or infinite values; training "
                             f"diverged (lower trainer.learning_rate)")
