"""Checkpoints that resume a run exactly: trainable weights, optimizer, scheduler, RNG and the
position in the epoch's batch order.

Weights are safetensors; optimizer/scheduler/RNG tensors load with ``torch.load(weights_only=True)``
(no arbitrary pickle); Python's and NumPy's RNG states are JSON. A checkpoint is written to a
temporary folder and renamed, so a crash never leaves a half-written one behind. A write that
fails (a full disk above all: torch reports it as an ``inline_container.cc`` enforce failure that
asks for a bug report) removes the partial folder and is one ``WriteFailed`` line saying what
happened; the checkpoints already written stay, so the rerun resumes exactly from the last one.
"""
from __future__ import annotations

import contextlib
import errno
import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

PREFIX = "step-"
#: Free space below which a failed write is reported as a full disk (torch's writer gives no errno).
NEARLY_FULL_BYTES = 64 * 2**20


class WriteFailed(RuntimeError):
    """Training output could not be written (the disk is full, most often); the message says which."""


def _no_space(exc: BaseException, folder: Path) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    text = str(exc)
    if "No space left" in text or "StorageFull" in text or "Disk quota" in text:
        return True
    try:
        return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    except OSError:
        return False


@contextlib.contextmanager
def reported_writes(what: str, folder: Path, cleanup: Path | None = None, then: str = ""):
    """Writing ``what`` under ``folder``: a failure (full disk, torch's or safetensors' writer
    errors) becomes one ``WriteFailed`` line; ``cleanup`` (a partial folder) is removed first.
    ``then``: what a rerun does."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        full = _no_space(exc, folder)  # before the cleanup frees the partial write's space
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
        free = f"{shutil.disk_usage(folder).free / 2**20:.0f} MiB free now" if folder.exists() else ""
        if full:
            raise WriteFailed(f"disk full while writing {what} to {folder} ({free}): free some space and rerun"
                              f"{then}") from None
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise WriteFailed(f"could not write {what} to {folder}: {detail.split('] ', 1)[-1]}{then}") from None
    except Exception as exc:  # noqa: BLE001 - safetensors_rust.SafetensorError and other writer errors
        if type(exc).__name__ != "SafetensorError":
            raise
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
        said = "disk full" if _no_space(exc, folder) else "could not write"
        raise WriteFailed(f"{said} while writing {what} to {folder}: {str(exc).strip()[:200]}{then}") from None


@dataclass
class TrainState:
    step: int = 0           # optimizer steps done
    stage: int = 0          # index into the stage list (two-stage training)
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of this process consumed in the current epoch
    losses: list[list[float]] = field(default_factory=list)  # [step, loss, lr]


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def partial_checkpoint(folder: Path, step: int) -> Path:
    """Where checkpoint ``step`` is written before it is renamed into place."""
    return folder / f".tmp-{PREFIX}{step}"


def save_checkpoint(folder: Path, model, optimizer, scheduler, state: TrainState, keep: int,
                    shards_written: bool = False) -> Path:
    """``shards_written``: every process already wrote its weights and optimizer state into the
    partial folder (sharded training); only the rest is written here."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{PREFIX}{state.step}"
    tmp = partial_checkpoint(folder, state.step)
    if not shards_written:
        shutil.rmtree(tmp, ignore_errors=True)
    last = latest_checkpoint(folder)
    then = f" (training resumes from {last.name})" if last is not None else " (training starts over)"
    with reported_writes(f"checkpoint {final.name}", folder, cleanup=tmp, then=then):
        tmp.mkdir(exist_ok=shards_written)
        if not shards_written:
            save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save({"torch": torch.get_rng_state()}, tmp / "rng.pt")
        np_state = np.random.get_state()
        (tmp / "rng.json").write_text(json.dumps({
            "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        }))
        (tmp / "state.json").write_text(json.dumps(asdict(state)))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(list_checkpoints(folder), key=_step)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _step(path: Path) -> int:
    return int(path.name[len(PREFIX):])


def list_checkpoints(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return [p for p in folder.iterdir() if p.name.startswith(PREFIX) and (p / "state.json").exists()]


def latest_checkpoint(folder: Path) -> Path | None:
    found = list_checkpoints(folder)
    return max(found, key=_step) if found else None


def read_state(path: Path) -> TrainState:
    return TrainState(**json.loads((path / "state.json").read_text()))


def load_checkpoint(path: Path, model, optimizer, scheduler, load_weights=None) -> TrainState:
    """``load_weights(path, model, optimizer)``: how weights and optimizer state are read instead
    of the unsharded files (sharded training)."""
    if load_weights is None:
        _load_unsharded(path, model, optimizer)
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    torch.set_rng_state(torch.load(path / "rng.pt", weights_only=True)["torch"])
    rng = json.loads((path / "rng.json").read_text())
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    if load_weights is not None:  # last: a sharded checkpoint holds each process's own torch RNG state
        load_weights(path, model, optimizer)
    return read_state(path)


def _load_unsharded(path: Path, model, optimizer) -> None:
    shards = sorted(p.name for p in path.glob("shard-*-of-*.safetensors"))
    if shards and not (path / "trainable.safetensors").exists():
        world = shards[0].rsplit("-of-", 1)[1].split(".")[0]
        raise ValueError(f"checkpoint {path} was written sharded (fsdp) by {world} processes; resume it with fsdp: "
                         f"true on {world} processes, or start over with --force")
    weights = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [n for n in weights if n not in params]
    if missing:
        raise ValueError(f"checkpoint {path} has weights the model lacks, e.g. {missing[:3]}")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
