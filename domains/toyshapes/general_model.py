"""The demo's starting "general MLLM": a tiny random backbone trained briefly on the general tasks.

In the paper, domain post-training starts from a general MLLM, not from random weights. Here that
model is an offline tiny checkpoint (``tiny: small``) trained with the ``sft`` trainer on the
general seed tasks of the toy world (``general/general_mix.jsonl``: the caption and every precise
question of each general image), so it knows how to describe a picture and how to answer open,
yes/no and multiple-choice questions, but only about the general shapes and colours.

The build is an ordinary ``adamllm run`` (stage ``train``) in its own output folder: its run
config is written there, and the runner's fingerprints make a rerun with the same settings a
no-op, so the model is built once and reused. Nothing here imports a plugin package: the
backbone and the trainer are found by name through the registry, as in any run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml


#: The backbone's image budget for the toy world (a Qwen-VL backbone section's ``min_pixels`` and
#: ``max_pixels``): exactly the 56 x 56 images, 4 image tokens. Set it in every run on the toy
#: world, training and evaluation alike: without it evaluation applies the paper's budget
#: (224 x 224 at least), upsamples the images to 64 tokens the model never saw in training, and
#: the answers turn to noise.
TOY_PIXELS = {"min_pixels": 56 * 56, "max_pixels": 56 * 56}


def _relative(path: Path, base: Path | None) -> str:
    """``path`` relative to ``base`` (``..`` allowed) when given, as configs resolve it; else as is."""
    return os.path.relpath(path, base) if base is not None else str(path)


def backbone_section(backbone: str, model: str | Path, **extra) -> dict:
    """A backbone section for the toy world (the pixel budget for the Qwen-VL families)."""
    section = {"type": backbone, "model": str(model), "max_length": 1024, **extra}
    if backbone.startswith("qwen"):
        section.update(TOY_PIXELS)
    return section


@dataclass(frozen=True)
class GeneralModelSettings:
    """How the starting model is trained; the defaults were chosen on the toy world (docs/shapes.md):
    a constant learning rate of 1.5e-4 (1e-3 or even 5e-4 never leave the answer prior: the model
    answers without looking at the image), 600 steps of 16 single-exchange examples (6 epochs of
    the default world's 1 600). ``for_world(fast=True)``: 300 steps, the fewest measured to leave
    chance level (150 do not)."""

    backbone: str = "qwen2_vl"
    size: str = "small"
    learning_rate: float = 1.5e-4
    lr_scheduler: str = "constant"
    max_steps: int | None = 600
    num_epochs: float = 10.0  # an upper bound; max_steps ends training first
    batch_size: int = 16
    warmup_ratio: float = 0.03
    seed: int = 0

    @classmethod
    def for_world(cls, fast: bool, **options) -> "GeneralModelSettings":
        """The measured settings for the default (600 steps) or the ``fast`` world (300 steps)."""
        return cls(**{"max_steps": 300 if fast else 600, **options})

    def run_config(self, world, base_model: Path, base: Path | None = None) -> dict:
        """The run config of the build. ``base``: the folder the config is written in; paths are
        then written relative to it (so a copied folder keeps working), else absolute."""
        trainer = {"type": "sft", "learning_rate": self.learning_rate, "lr_scheduler": self.lr_scheduler,
                   "num_epochs": self.num_epochs, "batch_size": self.batch_size,
                   "warmup_ratio": self.warmup_ratio, "log_every": 10}
        if self.max_steps is not None:
            trainer["max_steps"] = self.max_steps
        return {
            "output_dir": ".",
            "seed": self.seed,
            "stages": ["train"],
            "backbone": backbone_section(self.backbone, _relative(Path(base_model), base), tiny=self.size),
            "trainer": trainer,
            "data": {"train": _relative(Path(world.general_mix).resolve(), base)},
        }


def build_general_model(world, out_dir: str | Path, settings: GeneralModelSettings | None = None, *,
                        plugins=None, echo: Callable[[str], None] = print) -> Path:
    """Train (or reuse) the starting model in ``out_dir``; returns its model folder
    (``out_dir/train/model``). ``world``: a ``World`` from ``demo_world``. The random base
    checkpoint is built in ``out_dir/base`` on first use."""
    from adamllm.config import validate_config
    from adamllm.layout import RunLayout
    from adamllm.locking import output_lock
    from adamllm.registry import get_plugin_manager
    from adamllm.runner import run_pipeline

    settings = settings or GeneralModelSettings()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = settings.run_config(world, out / f"base-{settings.backbone}-{settings.size}", base=out)
    config_path = out / "general.yaml"
    text = "# The toy world's starting model (adamllm.domains.toyshapes.build_general_model)\n" + \
        yaml.safe_dump(data, sort_keys=False)
    if not config_path.is_file() or config_path.read_text() != text:
        config_path.write_text(text)
    pm = plugins or get_plugin_manager()
    config = validate_config(data, pm, source=config_path, base_dir=out)
    with output_lock(out, command="build_general_model"):
        run_pipeline(config, pm, echo=echo)
    return RunLayout(out).output("train")


__all__ = ["TOY_PIXELS", "GeneralModelSettings", "backbone_section", "build_general_model"]
