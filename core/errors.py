"""What the command line says about an error: one line for an expected error, the traceback only with ``-v``.

``friendly(exc)`` is the one place that decides whether an exception is *expected* (bad input, a
missing file, an unreachable hub, a component that refuses its options) and what one line to say
about it; ``None`` means a bug. The CLI (``adamllm.cli.PluginGroup``) passes every built-in and
plugin command through it. Expected:

- any exception whose class (or a base) is defined in ``adamllm``: ``ConfigError``, ``DataError``,
  ``StageError``, ``EvaluationError``, ``ExportError``, ``PluginError``, the trainers' errors
  (``TrainerError``), ``LockedError``, ...: their message, which names the file, field or record;
- any other ``ValueError`` (pydantic validation errors, a library refusing a checkpoint or an
  option): its first line;
- ``OSError`` (``FileNotFoundError``, ``PermissionError``, ``IsADirectoryError``, ...): its first
  line; an unreachable model hub (huggingface_hub / transformers / requests errors) says which
  model id and what to do;
- ``ModuleNotFoundError`` (an optional dependency that is not installed) and running out of GPU memory.

Everything here is import-light: no torch, transformers or huggingface_hub is imported to check.
"""
from __future__ import annotations

import os
from typing import Iterator

#: Modules whose exceptions mean "the model hub could not be used".
HUB_MODULES = ("huggingface_hub", "requests", "urllib3", "httpx", "httpcore")
#: Locals of the hub-facing functions of huggingface_hub / transformers that hold the model id.
_REPO_ID_LOCALS = ("repo_id", "path_or_repo_id", "pretrained_model_name_or_path")
_OFFLINE_TYPES = ("OfflineModeIsEnabled", "LocalEntryNotFoundError", "ConnectionError", "ConnectTimeout",
                  "ReadTimeout", "Timeout", "ConnectError", "NameResolutionError", "MaxRetryError")
_OFFLINE_TEXT = ("outgoing traffic has been disabled", "offline mode", "HF_HUB_OFFLINE", "couldn't connect to",
                 "Couldn't reach", "Failed to resolve", "Name or service not known")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def is_adamllm_error(exc: BaseException) -> bool:
    """The exception's class, or one of its bases, is defined in adamllm (core or a built-in plugin)."""
    return any(cls.__module__ == "adamllm" or cls.__module__.startswith("adamllm.") for cls in type(exc).__mro__)


def _from_hub(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    if module.split(".")[0] in HUB_MODULES:
        return True
    return isinstance(exc, OSError) and ("huggingface.co" in str(exc) or "HF_HUB_OFFLINE" in str(exc)
                                         or "local_files_only" in str(exc))


def hub_model_id(exc: BaseException) -> str | None:
    """The model id a hub lookup was for: read from the locals of the hub functions in the traceback."""
    for link in _chain(exc):
        tb = link.__traceback__
        found = None
        while tb is not None:
            frame_locals = tb.tb_frame.f_locals
            for name in _REPO_ID_LOCALS:
                value = frame_locals.get(name)
                if isinstance(value, (str, os.PathLike)) and str(value):
                    found = str(value)  # the innermost one wins
                    break
            tb = tb.tb_next
        if found:
            return found
    return None


def _hub_message(exc: BaseException) -> str | None:
    chain = list(_chain(exc))
    if not any(_from_hub(link) for link in chain):
        return None
    model = hub_model_id(exc)
    what = f" for {model!r}" if model else ""
    offline = (os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
               or any(type(link).__name__ in _OFFLINE_TYPES or any(t in str(link) for t in _OFFLINE_TEXT)
                      for link in chain))
    if offline:
        return (f"cannot reach the model hub{what} (offline?): give a local folder or set HF_HUB_OFFLINE=0")
    return f"model hub{what}: {first_line(chain[-1]) if _from_hub(chain[-1]) else first_line(exc)}"


def _validation_message(exc: BaseException) -> str | None:
    errors = getattr(exc, "errors", None)
    if not callable(errors) or type(exc).__module__.split(".")[0] not in ("pydantic", "pydantic_core"):
        return None
    try:
        items = errors()
    except Exception:  # noqa: BLE001 - not pydantic's errors() after all
        return None
    title = getattr(exc, "title", "")
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ())) or 'value'}: {e.get('msg', '')}" for e in items]
    return (f"{title}: " if title else "") + "; ".join(parts)


def friendly(exc: BaseException) -> str | None:
    """The line to print for an expected error, or ``None`` for an unexpected one (a bug)."""
    if is_adamllm_error(exc):
        return str(exc).strip() or type(exc).__name__
    hub = _hub_message(exc)
    if hub is not None:
        return hub
    if isinstance(exc, ModuleNotFoundError):
        package = (exc.name or "").split(".")[0]
        return f"{first_line(exc)}: install it (pip install {package})" if package else first_line(exc)
    if isinstance(exc, OSError):
        return first_line(exc)
    if isinstance(exc, ValueError):
        return _validation_message(exc) or first_line(exc)
    if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError, without importing torch
        return f"out of GPU memory: {first_line(exc)} (lower the batch size or max_length)"
    return None


def internal(exc: BaseException, verbose: bool = False) -> str:
    """The line for an unexpected error."""
    hint = "report it" if verbose else "rerun with -v for the traceback and report it"
    detail = f": {first_line(exc)}" if str(exc).strip() else ""
    return f"internal error: {type(exc).__name__}{detail} ({hint})"
