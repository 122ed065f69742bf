"""One process per output folder: ``with output_lock(folder, command="adamllm run x.yaml"):``.

The lock is an exclusive ``fcntl.flock`` on ``folder/.adamllm.lock``, so the operating system
releases it when the holder exits, however it exits (no stale locks to clean up). The holder writes
its pid, host, command and start time into the file; a second process on the same folder fails at
once with a ``LockedError`` that quotes them. Under a multi-process launcher (``RANK`` /
``LOCAL_RANK`` set and ``WORLD_SIZE`` > 1) only global rank 0 takes the lock: the other ranks of
the same job share the folder with it.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

LOCK_FILE = ".adamllm.lock"


class LockedError(RuntimeError):
    """Another process holds the output folder's lock."""

    def __init__(self, folder: Path, holder: dict) -> None:
        self.folder, self.holder = folder, holder
        if holder.get("pid"):
            who = f"pid {holder['pid']} on {holder.get('host', '?')} since {holder.get('started', '?')}"
            command = f" ({holder['command']})" if holder.get("command") else ""
        else:
            who, command = "another process", ""
        super().__init__(f"{folder} is in use by {who}{command}; wait for it or use another output folder")


def _rank_zero() -> bool:
    """True unless this is a non-zero rank of a multi-process launch."""
    env = os.environ
    if "RANK" not in env and "LOCAL_RANK" not in env:
        return True
    try:
        if int(env.get("WORLD_SIZE", "1")) <= 1:
            return True
        return int(env.get("RANK", env.get("LOCAL_RANK", "0"))) == 0
    except ValueError:
        return True


def lock_holder(folder: str | os.PathLike) -> dict:
    """What the lock file of ``folder`` says about its (last) holder; ``{}`` if nothing."""
    try:
        return json.loads((Path(folder) / LOCK_FILE).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike, command: str = "") -> Iterator[Path | None]:
    """Hold ``folder``'s lock for the block (creating the folder); yields the lock file, or ``None``
    where no lock is taken (a non-zero rank; a platform without ``fcntl``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield None
        return
    if not _rank_zero():
        yield None
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(folder, lock_holder(folder)) from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                  "started": time.strftime("%Y-%m-%d %H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # released: the file stays (removing it would race a new holder)
    finally:
        os.close(fd)  # closing the descriptor releases the lock
