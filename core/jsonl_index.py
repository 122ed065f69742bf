"""A JSONL file read by record number without holding its records: the byte span of every
non-blank line, found in one scan (numpy over the raw bytes, about a second per GB), then a
record parsed on demand from a memory map.

``JsonlIndex.record(i)`` is what ``iter_records`` gives for the ``i``-th non-blank line, or the
``DataError`` it reports for it (``path:line``: not UTF-8, invalid JSON, a lone surrogate, not an
object). The index costs 20 bytes per record, so a million records hold 20 MB instead of their dicts.
Workers forked from the process that built it share it; each process maps the file itself.
"""
from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Any

from .io import _BOM, DataError, _Unusable, parse_jsonl_line

_CHUNK = 8 << 20
_SPACE = b" \t\r\n\x0b\x0c"


class ChangedFile(DataError):
    """The file is not the one that was indexed: every later record would be read wrong."""


class JsonlIndex:
    """The non-blank lines of a JSONL file by position; ``limit``: only the first that many."""

    def __init__(self, path: str | os.PathLike, limit: int | None = None) -> None:
        import numpy as np

        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such file")
        stat = self.path.stat()
        self.size, self._mtime = stat.st_size, stat.st_mtime_ns
        ends, firsts = [], [np.array([-1], dtype=np.int16)]  # firsts: each line's first byte (-1: not read yet)
        with self.path.open("rb") as handle:
            offset = 0
            while chunk := handle.read(_CHUNK):
                data = np.frombuffer(chunk, dtype=np.uint8)
                newlines = np.flatnonzero(data == 10)
                after = newlines + 1
                first = np.full(len(after), -1, dtype=np.int16)
                inside = after < len(data)
                first[inside] = data[after[inside]]
                if offset == 0:
                    firsts[0][0] = data[0]
                ends.append(newlines + offset)
                firsts.append(first)
                offset += len(chunk)
            ends_all = np.concatenate([*ends, np.array([self.size], dtype=np.int64)]).astype(np.int64)
            starts_all = np.concatenate([np.array([0], dtype=np.int64), ends_all[:-1] + 1])
            first_bytes = np.concatenate(firsts)
            keep = ends_all > starts_all
            fd = handle.fileno()
            for i in np.flatnonzero(keep & (first_bytes < 0)).tolist():  # a line starting at a chunk's edge
                first_bytes[i] = os.pread(fd, 1, int(starts_all[i]))[0]
            # a line that starts with white space may be blank: those few are read one by one
            maybe_blank = np.flatnonzero(keep & np.isin(first_bytes, np.frombuffer(_SPACE, dtype=np.uint8)))
            for i in maybe_blank.tolist():
                if not os.pread(fd, int(ends_all[i] - starts_all[i]), int(starts_all[i])).strip():
                    keep[i] = False
            if self.size and os.pread(fd, 3, 0) == _BOM and not os.pread(fd, int(ends_all[0]), 0)[3:].strip():
                keep[0] = False  # a byte-order mark alone on the first line
        numbers = np.arange(1, len(starts_all) + 1, dtype=np.int32)
        self.starts, self.ends, self.lines = starts_all[keep], ends_all[keep], numbers[keep]
        if limit is not None:
            self.starts, self.ends, self.lines = self.starts[:limit], self.ends[:limit], self.lines[:limit]
        self._map: tuple[int, Any] | None = None

    def __len__(self) -> int:
        return len(self.starts)

    def where(self, i: int) -> str:
        return f"{self.path}:{int(self.lines[i])}"

    def record(self, i: int) -> dict:
        """The ``i``-th non-blank line's record; a ``DataError`` naming ``path:line`` when it cannot be used."""
        raw = self._data()[int(self.starts[i]):int(self.ends[i])]
        parsed = parse_jsonl_line(raw, first=int(self.lines[i]) == 1)
        if isinstance(parsed, _Unusable):
            raise DataError(f"{self.where(i)}: {parsed.message}")
        if not isinstance(parsed, dict):
            raise DataError(f"{self.where(i)}: expected a JSON object, got {type(parsed).__name__}")
        return parsed

    def _data(self):
        pid = os.getpid()
        if self._map is None or self._map[0] != pid:  # a forked worker maps the file itself
            stat = self.path.stat()
            if stat.st_size != self.size or stat.st_mtime_ns != self._mtime:
                raise ChangedFile(f"{self.path}: the file changed while it was being read (it was indexed at "
                                f"{self.size} bytes, it has {stat.st_size} now); run again")
            with self.path.open("rb") as handle:
                self._map = (pid, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
        return self._map[1]

    def __getstate__(self) -> dict:  # a spawned worker maps the file again
        return {**self.__dict__, "_map": None}
