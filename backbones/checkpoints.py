"""Checks on a checkpoint folder before anything is loaded from it.

Two mistakes otherwise surface as errors that do not say what is wrong: a checkpoint of another
family (a Qwen2-VL folder given to ``llava_next`` fails deep inside the processor, naming a missing
attribute), and pickle weights (``pytorch_model.bin``), which can run code when unpickled and are
loaded silently when no safetensors file is there. Both are refused here in one line, naming the
folder, what it holds and what to do; pickle weights load only with ``allow_pickle_weights: true``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

#: Weight files that are Python pickles (``torch.save``): loading one can execute code.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


class CheckpointError(ValueError):
    """A checkpoint folder that must not be loaded as it is: another family's, or pickle weights."""


def model_type_of(folder: Path) -> str | None:
    """The ``model_type`` in the folder's ``config.json``, or None (no file, or none written)."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # transformers says what is wrong with a missing or broken config.json
    value = config.get("model_type") if isinstance(config, dict) else None
    return value if isinstance(value, str) and value else None


def family_matches(family: str, model_type: str, model_types: Iterable[str] = ()) -> bool:
    """Whether a checkpoint's ``model_type`` belongs to the family (its ``model_types`` when given,
    else any model type that contains the family name)."""
    model_types = tuple(model_types)
    if model_types:
        return model_type in model_types
    return family.replace("_", "") in model_type.replace("_", "")


def check_family(folder: Path, model: str, family: str, model_types: Iterable[str] = ()) -> None:
    """Refuse a checkpoint whose config names another model type than the backbone type chosen."""
    model_type = model_type_of(folder)
    if model_type is not None and not family_matches(family, model_type, model_types):
        raise CheckpointError(f"{model} is a {model_type!r} checkpoint, not {family!r}: select the matching "
                              f"backbone type")


def pickle_weights(folder: Path) -> list[str]:
    """The pickle weight files of a folder that holds no safetensors file (none when it holds one:
    transformers then loads the safetensors)."""
    folder = Path(folder)
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return []
    return sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES and p.is_file())


def check_weights(folder: Path, model: str, allow_pickle: bool) -> None:
    """Refuse a folder whose weights are pickle files only, unless the config allows them."""
    found = [] if allow_pickle else pickle_weights(folder)
    if found:
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise CheckpointError(f"{model} holds pickle weights ({shown}), not safetensors: a pickle file can run code "
                              f"when loaded; convert it to safetensors, or set allow_pickle_weights: true in the "
                              f"backbone section (adamllm eval: --allow-pickle-weights) if you trust it")


def safe_from_pretrained(load: Any, model: str, allow_pickle: bool, **kwargs: Any) -> Any:
    """``load(model, **kwargs)`` (a transformers ``from_pretrained``) taking safetensors only unless
    pickle weights are allowed; a pickle that ``torch.load(weights_only=True)`` refuses (it would run
    code, or is corrupt) is one line naming the model, not an unpickling traceback."""
    import pickle

    if not allow_pickle:
        kwargs["use_safetensors"] = True
    try:
        return load(model, **kwargs)
    except pickle.UnpicklingError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0]
        raise CheckpointError(f"{model}: its pickle weights were refused (they hold objects other than tensors, "
                              f"which could run code, or are corrupt): {first}") from exc


#: Key prefixes that transformers 5 saves differently from the released (hub) checkpoints, per
#: family: (as saved, as released). transformers loads both; vLLM's loader only the released one.
HUB_KEY_LAYOUT = {"llava_next": (("vision_tower.", "vision_tower.vision_model."),)}


def write_hub_layout(folder: str | Path, family: str) -> int:
    """Rename the weights saved in ``folder`` to the released checkpoints' key layout (the
    ``HUB_KEY_LAYOUT`` of ``family``; a no-op for the others), in every safetensors file and the
    shard index; returns how many keys were renamed. So a folder adamllm writes (a tiny model, a
    trained or exported one) loads wherever a released checkpoint of its family does."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    rules = HUB_KEY_LAYOUT.get(family, ())

    def renamed(key: str) -> str:
        for saved, released in rules:
            if key.startswith(saved) and not key.startswith(released):
                return released + key[len(saved):]
        return key

    folder, count = Path(folder), 0
    for path in sorted(folder.glob("*.safetensors")) if rules else ():
        with safe_open(str(path), "pt") as handle:
            names, metadata = {k: renamed(k) for k in handle.keys()}, handle.metadata() or {"format": "pt"}
            moved = sum(old != new for old, new in names.items())
            if not moved:
                continue
            tensors = {new: handle.get_tensor(old) for old, new in names.items()}
        count += moved
        save_file(tensors, str(path), metadata=metadata)
    index = folder / "model.safetensors.index.json"
    if rules and index.is_file():
        data = json.loads(index.read_text(encoding="utf-8"))
        data["weight_map"] = {renamed(k): v for k, v in data.get("weight_map", {}).items()}
        index.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return count
