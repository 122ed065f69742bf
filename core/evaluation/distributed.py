"""Data parallelism: accelerate's process state, and each process's own GPU."""
from __future__ import annotations

import os


def process_state():
    """accelerate's process state. CPU processes need ``cpu=True`` to form a (gloo) group: set by
    ``ACCELERATE_USE_CPU=1`` (as ``Accelerator`` reads it), or implied by several processes and no GPU."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    cpu = parse_flag_from_env("ACCELERATE_USE_CPU")
    if not cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch

        cpu = not torch.cuda.is_available()
    return PartialState(cpu=cpu)


def per_process_device(device: str) -> str:
    """Under data parallelism each process loads its model on its own GPU (``cuda`` -> ``cuda:<local rank>``)."""
    state = process_state()
    if state.num_processes > 1 and device == "cuda":
        return f"cuda:{state.local_process_index}"
    return device
