"""Export a trained run as a complete directory that plain transformers reloads.

Full fine-tune: the model with its processor, tokenizer and chat template. LoRA: the adapter
(``adapter_model.safetensors`` + ``adapter_config.json``, loadable by transformers with peft
installed) or, with ``merge_lora``, the base model with the adapter merged into its weights.

The folder is written by the backbone's ``save``: plain ``transformers.AutoProcessor`` and
``AutoModelForImageTextToText`` load it, in an environment without torchvision (adamllm's own) as
in one with it; a Qwen-VL folder names an image-only processor class of transformers for that
(``adamllm.backbones.processors``, ``PORTABLE_PROCESSOR_CLASS``). No remote code is involved.
"""
from __future__ import annotations

import json
from pathlib import Path


class ExportError(ValueError):
    pass


def train_dir(run_dir: str | Path) -> Path:
    """Accept a run's output folder or its ``train/`` folder."""
    run_dir = Path(run_dir)
    for candidate in (run_dir, run_dir / "train"):
        if (candidate / "run_info.json").exists():
            return candidate
    raise ExportError(f"{run_dir} holds no trained run (no run_info.json there or in train/)")


def export_run(run_dir: str | Path, out_dir: str | Path, plugins, *, merge_lora: bool = False) -> Path:
    folder = train_dir(run_dir)
    info = json.loads((folder / "run_info.json").read_text())
    spec = plugins.spec("backbone", info["backbone"])
    config_model = spec.load_config_model()
    if info["mode"] == "full":
        adapter = spec.build(config_model(model=str(folder / info["model_dir"])))
        return adapter.save(out_dir)
    from peft import PeftModel

    adapter = spec.build(config_model(model=info["base_model"]))
    peft_model = PeftModel.from_pretrained(adapter.model, folder / info["adapter_dir"])
    adapter.model = peft_model.merge_and_unload() if merge_lora else peft_model
    return adapter.save(out_dir)
