"""Reading JSONL and JSON-array records and writing JSONL, with errors that name the file and line;
root-confined paths."""
from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")


class DataError(ValueError):
    """Bad input data; the message names the file and line (or record)."""


class PathEscapeError(DataError):
    pass


class SymlinkLoopError(DataError):
    """A path whose symlinks point back at themselves: it names nothing that can be read."""


def resolve_under(root: str | Path, relative: str | Path) -> Path:
    """``root / relative``, refusing absolute paths and ``..`` that leave ``root``, and symlink
    loops (``SymlinkLoopError``: Python 3.11 raises RuntimeError there, later ones OSError)."""
    root = Path(root).resolve()
    try:
        candidate = (root / relative).resolve()
    except (RuntimeError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno != errno.ELOOP:
            raise
        raise SymlinkLoopError(f"path {str(relative)!r} under {str(root)!r} is a symlink loop") from None
    if candidate != root and root not in candidate.parents:
        raise PathEscapeError(f"path {str(relative)!r} escapes its root {str(root)!r}")
    return candidate


def iter_records(path: str | Path, model: type[T] | None = None, *, tolerant: bool = False,
                 on_error: Callable[[str, str], None] | None = None) -> Iterator[tuple[str, T | dict]]:
    """Yield ``(where, record)`` from a ``.jsonl`` file (one JSON object per line, blank lines
    skipped) or a ``.json`` file holding a JSON array of objects (pretty-printed, as the released
    data are), chosen by suffix; any other suffix is read as JSONL unless its first non-space
    character is ``[``. ``where`` is ``"{path}:{line}"`` (for a JSON array: the line where that
    record starts).

    ``model``: a pydantic model each record is validated with (a ``DataError`` names ``where`` and
    the field). A non-object record, invalid JSON or bytes that are not UTF-8 raise ``DataError``
    naming the file and line; a leading byte-order mark is accepted. ``tolerant=True`` (JSONL
    only): lines that do not parse (a crash's torn last line) are skipped instead.
    ``on_error(where, message)``: called for a bad record instead of raising, and the record is
    skipped (the quarantine's ``reject`` fits); a JSON array that does not parse as a whole still
    raises, since nothing after the fault can be read.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if _is_array_file(path):
        rows = _array_rows(path)
    else:
        rows = _jsonl_rows(path, tolerant, on_error)

    def bad(where: str, message: str) -> None:
        if on_error is None:
            raise DataError(f"{where}: {message}")
        on_error(where, message)

    for where, data in rows:
        if isinstance(data, _Unusable):
            bad(where, data.message)
            continue
        if not isinstance(data, dict):
            bad(where, f"expected a JSON object, got {type(data).__name__}")
            continue
        if model is None:
            yield where, data
            continue
        try:
            validated = model.model_validate(data)  # type: ignore[attr-defined]
        except Exception as exc:  # pydantic.ValidationError, kept import-free here
            bad(where, _short(exc))
            continue
        yield where, validated


def read_records(path: str | Path, model: type[T] | None = None) -> list[T | dict]:
    """The records of a JSONL or JSON-array file (see ``iter_records``)."""
    return [record for _, record in iter_records(path, model)]


_BOM = b"\xef\xbb\xbf"
#: A JSON escape of a UTF-16 surrogate (``\ud800``..``\udfff``): valid JSON, but alone (unpaired)
#: it decodes to a str that no UTF-8 writer, tokenizer or hash accepts. Searched on the raw text
#: first, so only the rare record with such an escape is checked further.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


class _Unusable:
    """A row that parsed but cannot be used; ``iter_records`` reports it like a malformed one."""

    def __init__(self, message: str) -> None:
        self.message = message


def _unpaired_surrogate(data: Any) -> _Unusable | None:
    """Why ``data`` (parsed JSON) cannot be written back as UTF-8, or None: a lone surrogate."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start]) if exc.start < len(exc.object) else 0
        return _Unusable(f"text is not valid Unicode: an unpaired surrogate \\u{code:04x} (a broken "
                         f"UTF-16 escape)")
    return None
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def count_records(path: str | Path) -> int:
    """How many records ``iter_records`` would read from ``path`` (bad ones included): non-blank
    lines of a JSONL file, elements of a JSON array. For progress bars, so it only scans."""
    path = Path(path)
    if _is_array_file(path):
        return sum(1 for _ in _array_rows(path))
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _is_array_file(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return suffix == ".json"
    with path.open("rb") as handle:
        head = handle.read(len(_BOM))
        if head != _BOM:
            handle.seek(0)
        while chunk := handle.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped.startswith(b"[")
    return False


def parse_jsonl_line(raw: bytes, first: bool = False, tolerant: bool = False) -> Any:
    """One JSONL line's record: the parsed JSON, ``None`` for a blank line (or, ``tolerant``, one
    that does not parse), or an ``_Unusable`` saying why it cannot be read (not UTF-8, invalid
    JSON, an unpaired surrogate). ``first``: the file's first line, which may start with a BOM."""
    if first and raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None if tolerant else _Unusable(f"not UTF-8 text ({exc.reason} at byte {exc.start} of the line)")
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return None if tolerant else _Unusable(f"invalid JSON: {exc.msg}")
    if not tolerant and _SURROGATE_ESCAPE_BYTES.search(raw):  # tolerant: our own output files
        data = _unpaired_surrogate(data) or data
    return data


def _jsonl_rows(path: Path, tolerant: bool, on_error: Callable[[str, str], None] | None = None
                ) -> Iterator[tuple[str, Any]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            data = parse_jsonl_line(raw, number == 1, tolerant)  # an _Unusable is reported by iter_records
            if data is None:
                continue
            where = f"{path}:{number}"
            yield where, data


def _array_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """The elements of a JSON array with the line each starts on (``raw_decode`` one by one)."""
    raw = path.read_bytes()
    if raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text ({exc.reason})") from None
    decoder = json.JSONDecoder()
    line, counted = 1, 0

    def where(pos: int) -> str:
        nonlocal line, counted
        line += text.count("\n", counted, pos)
        counted = pos
        return f"{path}:{line}"

    def fail(pos: int, message: str) -> DataError:
        return DataError(f"{where(pos)}: {message}")

    pos = _WHITESPACE.match(text).end()
    if pos == len(text) or text[pos] != "[":
        hint = " (a JSONL file should be named .jsonl)" if text[pos:pos + 1] == "{" else ""
        raise fail(pos, f"expected a JSON array of objects{hint}")
    pos = _WHITESPACE.match(text, pos + 1).end()
    if text[pos:pos + 1] == "]":
        pos += 1
    else:
        while True:
            try:
                data, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise fail(exc.pos, f"invalid JSON: {exc.msg}") from None
            if _SURROGATE_ESCAPE.search(text, pos, end):
                data = _unpaired_surrogate(data) or data
            yield where(pos), data
            pos = _WHITESPACE.match(text, end).end()
            separator = text[pos:pos + 1]
            if separator == "]":
                pos += 1
                break
            if separator != ",":
                raise fail(pos, "invalid JSON: the array is not closed (no ']')" if not separator
                           else "invalid JSON: expected ',' or ']' after an array element")
            pos = _WHITESPACE.match(text, pos + 1).end()
    pos = _WHITESPACE.match(text, pos).end()
    if pos != len(text):
        raise fail(pos, "invalid JSON: extra data after the array")


def _short(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in errors()
        )
    return str(exc)


def _dump(record: Any) -> str:
    if hasattr(record, "model_dump"):
        record = record.model_dump(mode="json", exclude_none=True)
    return json.dumps(record, ensure_ascii=False)


def temp_path(path: str | Path) -> Path:
    """A temporary file next to ``path`` that no other process or thread uses (pid and a random
    suffix), to be written and then ``os.replace``d onto ``path``."""
    import secrets

    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_jsonl(path: str | Path, records: Iterable[Any]) -> int:
    """Write records atomically (a temporary file renamed into place); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    count = 0
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(_dump(record) + "\n")
                count += 1
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left when something failed before the rename
    return count


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that a crash left without its newline (it was never completed). Reads
    only the file's tail, so reopening a large output to resume it costs no memory."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("r+b") as handle:
        end = handle.seek(0, os.SEEK_END)
        handle.seek(end - 1)
        if handle.read(1) == b"\n":
            return
        position = end
        while position > 0:
            start = max(0, position - 65536)
            handle.seek(start)
            cut = handle.read(position - start).rfind(b"\n")
            if cut != -1:
                handle.truncate(start + cut + 1)
                return
            position = start
        handle.truncate(0)


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
