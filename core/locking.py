"""One writer per output folder and every folder inside it: ``with output_lock(folder, command="adamllm run x.yaml"):``.

The lock is an exclusive ``fcntl.flock`` on ``folder/.adamllm.lock``, so the operating system
releases it when the holder exits, however it exits (no stale locks to clean up). The holder writes
its pid, host, command and start time into the file; a second process on the same folder fails at
once with a ``LockedError`` that quotes them. Under a multi-process launcher (``RANK`` /
``LOCAL_RANK`` set and ``WORLD_SIZE`` > 1) only global rank 0 takes the lock: the other ranks of
the same job share the folder with it.

A lock covers the folders inside its folder too (``adamllm eval --out OUT/evaluate`` while
``adamllm run`` writes ``OUT`` would be two writers on one predictions folder): the holder of a
folder also takes a *shared* lock on the lock file of every enclosing folder that has one, which
an exclusive holder there refuses and which keeps a later exclusive taker out; and a new lock file
is only kept after a look through the folder finds no held lock inside it (a folder never locked
before may hold one). A process may lock folders inside the ones it holds (a stage inside its run).

``output_problem`` is the one check of what may be an output folder at all (``run``'s
``output_dir``, ``tiny``, ``export``): never a filesystem root, the home folder or a folder holding
it; and no mount point for the commands that replace their folder whole (``tiny``, ``export``).
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from .distributed import launched_rank_zero

LOCK_FILE = ".adamllm.lock"
_HELD: dict[Path, int] = {}  # folders this process holds (exclusively, or shared as an enclosing one)


class LockedError(RuntimeError):
    """Another process holds the output folder's lock, or one of a folder around or inside it."""

    def __init__(self, folder: Path, holder: dict, where: Path | None = None) -> None:
        self.folder, self.holder, self.where = folder, holder, where
        if holder.get("pid"):
            who = f"pid {holder['pid']} on {holder.get('host', '?')} since {holder.get('started', '?')}"
            command = f" ({holder['command']})" if holder.get("command") else ""
        else:
            who, command = "another process", ""
        if where is None:
            said = f"{folder} is in use by {who}{command}"
        elif where.resolve() in folder.resolve().parents:
            said = f"{folder} is inside {where}, in use by {who}{command}"
        else:
            said = f"{folder} holds {where}, in use by {who}{command}"
        super().__init__(f"{said}; wait for it or use another output folder")


class FolderError(ValueError):
    """A folder a command may not write into or replace."""


def output_problem(folder: str | os.PathLike, *, replaced: bool = False) -> str | None:
    """Why ``folder`` cannot be an output folder (a root, home or above; a mount point when the
    command would ``replace`` the folder, as ``tiny`` and ``export --force`` do), or None. A run may
    write into a mount point: a disk mounted for the run's output is a folder of its own."""
    path = Path(folder).expanduser().resolve()
    home = Path.home().expanduser().resolve()
    if path == Path(path.anchor):
        return "the filesystem root"
    if path == home:
        return "the home folder"
    if path in home.parents:
        return f"a folder holding the home folder {home}"
    if replaced and os.path.ismount(path):
        return "a mount point (the root of a file system)"
    return None


def check_output_folder(folder: str | os.PathLike, *, replaced: bool = False) -> None:
    """Raise ``FolderError`` for a folder that ``output_problem`` refuses."""
    problem = output_problem(folder, replaced=replaced)
    if problem:
        raise FolderError(f"{folder} is {problem}: refusing to write there; give a folder of its own inside it")


def lock_holder(folder: str | os.PathLike) -> dict:
    """What the lock file of ``folder`` says about its (last) holder; ``{}`` if nothing."""
    try:
        return json.loads((Path(folder) / LOCK_FILE).read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def _held_elsewhere(path: Path) -> bool:
    """Whether another process holds the lock file ``path`` (exclusively: a shared probe fails)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _locked_inside(folder: Path) -> tuple[Path, dict] | None:
    """A folder inside ``folder`` whose lock another process holds (not following links)."""
    pending = [folder]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                sub = Path(entry.path)
                if sub not in _HELD and (sub / LOCK_FILE).is_file() and _held_elsewhere(sub / LOCK_FILE):
                    return sub, lock_holder(sub)
                pending.append(sub)
    return None


@contextlib.contextmanager
def _enclosing_locks(folder: Path) -> Iterator[None]:
    """Shared locks on the lock files of the folders around ``folder`` (those this process does not
    hold already); refused, naming the holder, where another process holds one exclusively."""
    import fcntl

    fds: list[tuple[int, Path]] = []
    try:
        for parent in folder.parents:
            if parent in _HELD or not (parent / LOCK_FILE).is_file():
                continue
            try:
                fd = os.open(parent / LOCK_FILE, os.O_RDONLY)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LockedError(folder, lock_holder(parent), where=parent) from None
            fds.append((fd, parent))
            _HELD[parent] = _HELD.get(parent, 0) + 1
        yield
    finally:
        for fd, parent in fds:
            os.close(fd)
            _HELD[parent] -= 1
            if not _HELD[parent]:
                del _HELD[parent]


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike, command: str = "", remove: bool = False) -> Iterator[Path | None]:
    """Hold ``folder``'s lock for the block (creating the folder); yields the lock file, or ``None``
    where no lock is taken (a non-zero rank; a platform without ``fcntl``). ``remove``: delete the
    lock file at the end (a folder that is a finished product, such as an exported model)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield None
        return
    if not launched_rank_zero():
        yield None
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    key = folder.resolve()
    new = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if _held_elsewhere(path):
                raise LockedError(folder, lock_holder(folder)) from None
            inside = _locked_inside(key)  # only shared holders: writers in folders inside this one
            raise LockedError(folder, inside[1] if inside else {},
                              where=folder / inside[0].relative_to(key) if inside else None) from None
        # who holds it, written as soon as it is held: a process refused from now on names us
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                  "started": time.strftime("%Y-%m-%d %H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(_enclosing_locks(key))
                inside = _locked_inside(key) if new else None
                if inside:
                    raise LockedError(folder, inside[1], where=folder / inside[0].relative_to(key))
            except LockedError:
                if new:  # a lock file is kept only where nothing inside was held when it was made
                    with contextlib.suppress(OSError):
                        path.unlink()
                else:
                    os.ftruncate(fd, 0)
                raise
            _HELD[key] = _HELD.get(key, 0) + 1
            try:
                yield path
            finally:
                _HELD[key] -= 1
                if not _HELD[key]:
                    del _HELD[key]
                if remove:
                    with contextlib.suppress(OSError):
                        path.unlink()
                else:
                    os.ftruncate(fd, 0)  # released: the file stays (removing it would race a new holder)
    finally:
        os.close(fd)  # closing the descriptor releases the lock
