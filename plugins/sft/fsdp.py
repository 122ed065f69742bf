"""``fsdp: true``: parameters, gradients and optimizer state sharded over the processes (FSDP2).

Full fine-tuning with AdamW needs about 16 bytes per parameter (weights, gradients, two moments):
~180 GB for the paper's Llama-3.2-11B-Vision, more than one 80 GB GPU. ``torch.distributed.fsdp.
fully_shard`` splits every parameter across the processes and gathers a layer's weights only
while that layer runs. Each decoder layer and vision block (the classes a transformers model lists
in ``_no_split_modules``) is its own unit; the rest (embeddings, head, norms, projector) is the
root unit around the loss module. accelerate is not given the model (on CPU it would wrap it in
DDP instead of sharding it); it still prepares the optimizer and schedule.

Checkpoints stay sharded: each process writes its own parameters' shards and optimizer state
(``shard-RANK-of-WORLD.safetensors``, no pickle), so nothing is gathered to one process and a
resume needs the same number of processes (a different number is a one-line error). The final
model is gathered once, at the end, into a complete unsharded copy on the main process and saved
as any other run's model.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

SHARD = "shard-{rank}-of-{world}.safetensors"
GROUPS = "optimizer-groups.json"


def layer_classes(model: torch.nn.Module) -> set[str]:
    """Class names of the blocks sharded one by one: every ``_no_split_modules`` of the model's parts."""
    names: set[str] = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or ())
    return names


def shard(root: torch.nn.Module, model: torch.nn.Module, mixed_precision: str = "no") -> int:
    """Shard ``model``'s blocks, then ``root`` (the loss module holding it). Returns the number of
    blocks sharded on their own."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
        if mixed_precision == "bf16" else MixedPrecisionPolicy()
    names = layer_classes(model)
    blocks = [m for m in model.modules() if type(m).__name__ in names]
    for block in blocks:
        fully_shard(block, mp_policy=policy)
    fully_shard(root, mp_policy=policy)
    return len(blocks)


def is_sharded(model: torch.nn.Module) -> bool:
    return any(_is_dtensor(p) for p in model.parameters())


def _is_dtensor(tensor: Any) -> bool:
    return type(tensor).__name__ == "DTensor"


def local(tensor: torch.Tensor) -> torch.Tensor:
    """This process's part of a sharded tensor (the tensor itself when it is not sharded)."""
    return tensor.to_local() if _is_dtensor(tensor) else tensor


def held_elements(model: torch.nn.Module) -> tuple[int, int]:
    """(elements this process holds, elements of the whole model): how much is really sharded."""
    held = sum(local(p).numel() for p in model.parameters())
    return held, sum(p.numel() for p in model.parameters())


def set_gradient_sync(module: torch.nn.Module, sync: bool) -> None:
    """Reduce-scatter gradients after this backward (the last micro-batch) or keep accumulating."""
    module.set_requires_gradient_sync(sync)


def save_shard(folder: Path, model: torch.nn.Module, optimizer, rank: int, world: int) -> None:
    """This process's shards of the trainable weights and their AdamW state, and (rank 0) the
    optimizer's parameter groups, into ``folder``."""
    from safetensors.torch import save_file

    params = dict(model.named_parameters())
    tensors = {f"param/{n}": local(p).detach().cpu().contiguous() for n, p in params.items() if p.requires_grad}
    names = {id(p): n for n, p in params.items()}
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
    for param, state in inner.state.items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state/{names[id(param)]}/{key}"] = local(value).detach().cpu().contiguous().clone()
    tensors["rng/torch"] = torch.get_rng_state()  # each process's own (dropout differs per process)
    save_file(tensors, str(folder / SHARD.format(rank=rank, world=world)))
    if rank == 0:
        groups = [{k: v for k, v in group.items() if k != "params"} | {"params": [names[id(p)] for p in group["params"]]}
                  for group in inner.param_groups]
        (folder / GROUPS).write_text(json.dumps(groups))


def load_shard(folder: Path, model: torch.nn.Module, optimizer, rank: int, world: int) -> None:
    """Put back what ``save_shard`` wrote for this process: weights into the parameters' shards,
    the AdamW state rebuilt as sharded tensors like its parameters, the parameter groups' settings,
    this process's torch RNG state."""
    from safetensors.torch import load_file

    path = folder / SHARD.format(rank=rank, world=world)
    if not path.exists():
        found = sorted(p.name for p in folder.glob("shard-*.safetensors"))
        raise ShardMismatch(f"checkpoint {folder} was written by another number of processes ({', '.join(found[:2])}"
                            f"{', ...' if len(found) > 2 else ''}); resume it with that many, or start over with --force")
    saved = load_file(str(path))
    params = dict(model.named_parameters())
    inner = getattr(optimizer, "optimizer", optimizer)
    with torch.no_grad():
        for key, value in saved.items():
            kind, _, rest = key.partition("/")
            if kind == "param":
                local(params[rest]).copy_(value)
    state: dict[str, dict[str, Any]] = {}
    for key, value in saved.items():
        kind, _, rest = key.partition("/")
        if kind == "state":
            name, _, field = rest.rpartition("/")
            state.setdefault(name, {})[field] = _like(params[name], value) if value.dim() else value
    groups = json.loads((folder / GROUPS).read_text())
    for group, stored in zip(inner.param_groups, groups):
        group.update({k: (tuple(v) if k == "betas" else v) for k, v in stored.items() if k != "params"})
    for name, values in state.items():
        inner.state[params[name]] = values
    torch.set_rng_state(saved["rng/torch"])


def _like(param: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``value`` (a local shard) as a tensor sharded like ``param``."""
    if not _is_dtensor(param):
        return value.to(param.device)
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(value.to(local(param).device), param.device_mesh, param.placements,
                              shape=param.shape, stride=param.stride(), run_check=False)


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every weight, gathered whole on the CPU of rank 0 (empty elsewhere). Every process must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


class ShardMismatch(RuntimeError):
    """A sharded checkpoint resumed by another number of processes."""
