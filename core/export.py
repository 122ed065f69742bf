"""Export a trained run as a complete directory that plain transformers reloads, with the settings
adamllm evaluates it with.

Full fine-tune: the model with its processor, tokenizer and chat template. LoRA: the adapter
(``adapter_model.safetensors`` + ``adapter_config.json``, loadable by transformers with peft
installed) or, with ``merge_lora``, the base model with the adapter merged into its weights.

The folder is written by the backbone's ``save``: plain ``transformers.AutoProcessor`` and
``AutoModelForImageTextToText`` load it, in an environment without torchvision (adamllm's own) as
in one with it; a Qwen-VL folder names an image-only processor class of transformers for that
(``adamllm.backbones.processors``, ``PORTABLE_PROCESSOR_CLASS``). No remote code is involved.

``adamllm.json`` (``MODEL_SETTINGS``) beside the weights says what the model was trained with that
its evaluation must repeat: the backbone and the image budget (``min_pixels``/``max_pixels`` of
the run's backbone section, which the pipeline's evaluate stage used too). The train stage writes
it into ``OUT/train/model`` (and ``adapter/``), an export into its folder; for a run trained before
that file existed, the export reads the budget from the train stage's fingerprint. ``adamllm eval``
honours it unless ``--min-pixels``/``--max-pixels`` are given: without it, a model trained on the
toy world's 56 px images was evaluated with the paper's budget (224 x 224 at least), its images
upsampled to 16 times the image tokens it was trained on.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import __version__
from .layout import DONE

MODEL_SETTINGS = "adamllm.json"
BUDGET_KEYS = ("min_pixels", "max_pixels")


class ExportError(ValueError):
    pass


def train_dir(run_dir: str | Path) -> Path:
    """Accept a run's output folder or its ``train/`` folder."""
    run_dir = Path(run_dir)
    for candidate in (run_dir, run_dir / "train"):
        if (candidate / "run_info.json").exists():
            return candidate
    raise ExportError(f"{run_dir} holds no trained run (no run_info.json there or in train/)")


def write_model_settings(folder: str | Path, backbone: str, budget: dict | None, origin: str) -> Path:
    """Write ``FOLDER/adamllm.json``: the backbone and the image budget (``None``: the run set none,
    so evaluation uses the backbone's own evaluation default, as the evaluate stage did)."""
    path = Path(folder) / MODEL_SETTINGS
    budget = {k: budget.get(k) for k in BUDGET_KEYS} if budget and any(budget.get(k) for k in BUDGET_KEYS) else None
    path.write_text(json.dumps({"adamllm_version": __version__, "backbone": backbone, "image_budget": budget,
                                "from": origin}, indent=2) + "\n", encoding="utf-8")
    return path


def read_model_settings(model: str | Path) -> dict | None:
    """``MODEL/adamllm.json`` of a local model folder, or None (a hub id, a folder without one)."""
    path = Path(model) / MODEL_SETTINGS
    try:
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        return None
    except ValueError as exc:
        raise ExportError(f"{path}: not valid JSON ({exc}); delete it or pass --min-pixels/--max-pixels") from None
    budget = data.get("image_budget") if isinstance(data, dict) else None
    if not isinstance(data, dict) or (budget is not None and not (
            isinstance(budget, dict) and all(isinstance(budget.get(k), (int, type(None))) for k in BUDGET_KEYS))):
        raise ExportError(f"{path}: expected {{\"backbone\", \"image_budget\": {{\"min_pixels\", \"max_pixels\"}} or null}}")
    return data


def run_image_budget(folder: Path) -> tuple[dict | None, str]:
    """The image budget a trained run used (``folder``: its ``train/``) and where that was read:
    the model folder's ``adamllm.json``, else the train stage's fingerprint (the backbone section)."""
    folder = Path(folder).resolve()
    for sub in ("model", "adapter"):
        settings = read_model_settings(folder / sub)
        if settings is not None:
            return settings.get("image_budget"), f"{folder / sub / MODEL_SETTINGS}"
    try:
        done = json.loads((folder / DONE).read_text(encoding="utf-8"))
        config = done["fingerprint"]["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, "nowhere (the run records no backbone section)"
    budget = {k: config.get(f"backbone.{k}") for k in BUDGET_KEYS}
    return (budget if any(budget.values()) else None), f"the backbone section in {folder / DONE}"


def export_run(run_dir: str | Path, out_dir: str | Path, plugins, *, merge_lora: bool = False) -> Path:
    folder = train_dir(run_dir)
    info = json.loads((folder / "run_info.json").read_text())
    spec = plugins.spec("backbone", info["backbone"])
    config_model = spec.load_config_model()
    budget, where = run_image_budget(folder)
    options: dict[str, Any] = {k: v for k, v in (budget or {}).items() if v is not None}
    if info["mode"] == "full":
        adapter = spec.build(config_model(model=str(folder / info["model_dir"]), **options))
        out = adapter.save(out_dir)
    else:
        from peft import PeftModel

        adapter = spec.build(config_model(model=info["base_model"], **options))
        peft_model = PeftModel.from_pretrained(adapter.model, folder / info["adapter_dir"])
        adapter.model = peft_model.merge_and_unload() if merge_lora else peft_model
        out = adapter.save(out_dir)
    write_model_settings(out, info["backbone"], budget, f"adamllm export of {folder.resolve()} (budget from {where})")
    return Path(out)
