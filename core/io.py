"""JSONL reading and writing with errors that name the file and line, and root-confined paths."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

T = TypeVar("T")


class DataError(ValueError):
    """Bad input data; the message names the file and line (or record)."""


class PathEscapeError(DataError):
    pass


def resolve_under(root: str | Path, relative: str | Path) -> Path:
    """``root / relative``, refusing absolute paths and ``..`` that leave ``root``."""
    root = Path(root).resolve()
    candidate = (root / relative).resolve()
    if candidate != root and root not in candidate.parents:
        raise PathEscapeError(f"path {str(relative)!r} escapes its root {str(root)!r}")
    return candidate


def iter_jsonl(path: str | Path, model: type[T] | None = None) -> Iterator[tuple[int, T | dict]]:
    """Yield ``(line_number, record)``; a bad line raises ``DataError`` naming ``path:line``."""
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
            if model is None:
                if not isinstance(data, dict):
                    raise DataError(f"{path}:{number}: expected a JSON object")
                yield number, data
                continue
            try:
                yield number, model.model_validate(data)  # type: ignore[attr-defined]
            except Exception as exc:  # pydantic.ValidationError, kept import-free here
                raise DataError(f"{path}:{number}: {_short(exc)}") from None


def _short(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in errors()
        )
    return str(exc)


def read_jsonl(path: str | Path, model: type[T] | None = None) -> list[T | dict]:
    return [record for _, record in iter_jsonl(path, model)]


def _dump(record: Any) -> str:
    if hasattr(record, "model_dump"):
        record = record.model_dump(mode="json", exclude_none=True)
    return json.dumps(record, ensure_ascii=False)


def write_jsonl(path: str | Path, records: Iterable[Any]) -> int:
    """Write records atomically (a temporary file renamed into place); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(_dump(record) + "\n")
            count += 1
    os.replace(tmp, path)
    return count


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that a crash left without its newline (it was never completed)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


class JsonlAppender:
    """Appends records one by one and flushes each, so finished work survives a crash."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(self.path)
        self._handle = self.path.open("a", encoding="utf-8")

    def write(self, record: Any) -> None:
        self._handle.write(_dump(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def completed_ids(path: str | Path, key: str = "id") -> set[str]:
    """Ids already written to a JSONL file (a torn last line from a crash is ignored)."""
    path = Path(path)
    done: set[str] = set()
    if not path.exists():
        return done
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                done.add(str(json.loads(line)[key]))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return done
