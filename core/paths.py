"""Path fields of config models, resolved once, when a run config is validated.

A component's options model marks its path fields with these types; ``adamllm.config`` validates
every section with the config file's folder in the validation context, so a relative path means
"relative to the config file" everywhere, and stages receive absolute paths. Outside a config
(``model_validate`` without that context, e.g. ``adamllm eval`` flags) values stay as given.

- ``LocalPath``: always a local path (an image root, a prompt file, an output folder).
- ``LocalFolder``: a local folder that must exist (checked in a config), e.g. a domain's ``images``.
- ``PathOrHubId``: a local path if one exists there, else a hub id such as
  ``Qwen/Qwen2-VL-2B-Instruct`` (``OWNER/NAME``, no file suffix), kept as written. Anything else
  (a path that does not exist) is an error when the config is validated, so ``config validate``
  does not call a config valid whose data file or model folder is missing.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo

BASE_DIR = "adamllm_base_dir"  # key of the validation context
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_FILE_SUFFIXES = (".json", ".jsonl", ".parquet", ".arrow", ".yaml", ".yml", ".txt", ".csv", ".safetensors",
                  ".png", ".jpg", ".jpeg")


def looks_like_hub_id(value: str) -> bool:
    return bool(_HUB_ID.match(value)) and not value.lower().endswith(_FILE_SUFFIXES)


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


def existing_or_hub_id(value: Any, base: Path | None) -> Any:
    """``resolve_if_exists``, and a ``ValueError`` for a value that is neither (checked only in a
    config, where ``base`` is the config's folder)."""
    resolved = resolve_if_exists(value, base)
    if base is None or value is None or Path(str(resolved)).exists():
        return resolved
    # OWNER/NAME is a hub id, unless OWNER is a folder beside the config (then it names a path)
    if looks_like_hub_id(str(value)) and not (base / str(value).split("/")[0]).is_dir():
        return resolved
    raise ValueError(f"no such file or folder: {resolve_local(value, base)} (paths are relative to the "
                     f"config file), and {value!r} is not a hub id (OWNER/NAME)")


def _existing_folder(value: Any, info: ValidationInfo) -> Any:
    base = base_dir(info)
    resolved = resolve_local(value, base)
    if base is not None and value is not None and not Path(resolved).is_dir():
        raise ValueError(f"no such folder: {resolved} (paths are relative to the config file)")
    return resolved


def _local_or_hub(value: Any, info: ValidationInfo) -> Any:
    return existing_or_hub_id(value, base_dir(info))


def _local_or_hub_unchecked(value: Any, info: ValidationInfo) -> Any:
    return resolve_if_exists(value, base_dir(info))


LocalPath = Annotated[str, AfterValidator(_local)]
LocalFolder = Annotated[str, AfterValidator(_existing_folder)]
PathOrHubId = Annotated[str, AfterValidator(_local_or_hub)]
#: As ``PathOrHubId`` without the existence check, for a model that validation checks itself.
PathOrHubIdUnchecked = Annotated[str, AfterValidator(_local_or_hub_unchecked)]
