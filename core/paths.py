"""Path fields of config models, resolved once, when a run config is validated.

A component's options model marks its path fields with these types; ``adamllm.config`` validates
every section with the config file's folder in the validation context, so a relative path means
"relative to the config file" everywhere, and stages receive absolute paths. Outside a config
(``model_validate`` without that context, e.g. ``adamllm eval`` flags) values stay as given.

- ``LocalPath``: always a local path (an image root, a prompt file, an output folder).
- ``PathOrHubId``: a local path if one exists there, else kept as written (a hub id such as
  ``Qwen/Qwen2-VL-2B-Instruct``, or a path relative to the working directory).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo

BASE_DIR = "adamllm_base_dir"  # key of the validation context


def base_dir(info: ValidationInfo) -> Path | None:
    context = info.context or {}
    base = context.get(BASE_DIR)
    return Path(base) if base is not None else None


def resolve_local(value: Any, base: Path | None) -> Any:
    if value is None or base is None:
        return value
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def resolve_if_exists(value: Any, base: Path | None) -> Any:
    if value is None or base is None:
        return value
    path = Path(str(value)).expanduser()
    if path.is_absolute():
        return str(path)
    candidate = base / path
    return str(candidate.resolve()) if candidate.exists() else value


def _local(value: Any, info: ValidationInfo) -> Any:
    return resolve_local(value, base_dir(info))


def _local_or_hub(value: Any, info: ValidationInfo) -> Any:
    return resolve_if_exists(value, base_dir(info))


LocalPath = Annotated[str, AfterValidator(_local)]
PathOrHubId = Annotated[str, AfterValidator(_local_or_hub)]
