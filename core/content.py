"""Content signatures of input files, with a per-file cache so an unchanged rerun does not rehash.

A stage's result depends on the bytes of the files its records name (the images of a mix, a
benchmark's records and images, seed files), not only on the file that lists them. Hashing every
image on every rerun is too slow at 500K images, so each file's sha256 is cached in an SQLite file
(``OUT/.adamllm-content.sqlite``), keyed by its absolute path and reused while its size, mtime,
ctime and inode are the ones it was hashed with. ctime cannot be set by a user, so a file replaced
with its old size and mtime restored is still rehashed; ``full=True`` (or ``ADAMLLM_FULL_HASH=1``)
rehashes everything for file systems whose times cannot be trusted. A file changed within two
seconds of being hashed is rehashed next time (its mtime may not have moved).

Streaming: paths are looked up and hashed in batches; neither the paths nor the cache are held in
memory whole. Only regular files are read (a FIFO named as an image must not hang a fingerprint).
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import stat as stat_module
import time
from array import array
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Iterator

CACHE_NAME = ".adamllm-content.sqlite"
FULL_HASH_ENV = "ADAMLLM_FULL_HASH"
BATCH = 900  # paths per lookup (under SQLite's limit on query parameters)
RACY_NS = 2_000_000_000  # a file modified this close to its hashing is hashed again
SHOWN = 5  # changed files named in a message
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class ContentCache:
    """sha256 of files, cached by (path, size, mtime, ctime, inode). ``path`` None: nothing kept
    between runs. ``changed`` lists the files whose content differs from what the cache recorded
    (a replaced image, an edited benchmark), for messages saying which file changed."""

    def __init__(self, path: str | os.PathLike | None = None, full: bool | None = None) -> None:
        self.full = os.environ.get(FULL_HASH_ENV, "") not in ("", "0") if full is None else full
        self.changed: list[str] = []
        self.hashed = 0
        self.racy = False  # a file read was modified within RACY_NS of now
        self.path = Path(path) if path is not None else None
        try:
            self._db = self._open(self.path)
        except sqlite3.DatabaseError:  # a corrupt cache is only a cache: start a new one
            self.path.unlink(missing_ok=True)
            self._db = self._open(self.path)

    @staticmethod
    def _open(path: Path | None) -> sqlite3.Connection:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path) if path is not None else ":memory:", timeout=60)
        db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER, "
                   "ctime INTEGER, ino INTEGER, hashed INTEGER, sha TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS listings (key TEXT PRIMARY KEY, stamp BLOB, paths BLOB, "
                   "stamps TEXT, result TEXT)")
        return db

    def __enter__(self) -> "ContentCache":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.commit()
            self._db.close()
            self._db = None

    def sha(self, path: str | os.PathLike) -> str | None:
        """The file's sha256, or None when it is missing or not a regular file."""
        return next(self.many([str(path)]))[1]

    def many(self, paths: Iterable[str]) -> Iterator[tuple[str, str | None, tuple | None]]:
        """``(path, sha256 or None, stamp)`` for every path, in order, in batches; ``stamp``: the
        file's mode, size, times and inode as the hash was taken (``_stamp``)."""
        batch: list[str] = []
        for path in paths:
            batch.append(path)
            if len(batch) >= BATCH:
                yield from self._batch(batch)
                batch = []
        if batch:
            yield from self._batch(batch)

    def _batch(self, paths: list[str]) -> list[tuple[str, str | None, tuple | None]]:
        stats: dict[str, os.stat_result | None] = {}
        for path in paths:
            if path not in stats:
                try:
                    found = os.stat(path)
                except (OSError, ValueError):
                    found = None
                stats[path] = found if found is not None and stat_module.S_ISREG(found.st_mode) else None
        known: dict[str, tuple] = {}  # looked up under full=True too: it tells a changed file from a new one
        wanted = [p for p, s in stats.items() if s is not None]
        if wanted:
            marks = ",".join("?" * len(wanted))
            for row in self._db.execute(f"SELECT path, size, mtime, ctime, ino, hashed, sha FROM files "
                                        f"WHERE path IN ({marks})", wanted):
                known[row[0]] = row[1:]
        shas: dict[str, str | None] = {}
        updates = []
        now = time.time_ns()
        for path, found in stats.items():
            if found is not None and now - found.st_mtime_ns <= RACY_NS:
                self.racy = True
            if found is None:
                shas[path] = None
                continue
            key = (found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino)
            row = known.get(path)
            if row is not None and not self.full and tuple(row[:4]) == key and row[4] - found.st_mtime_ns > RACY_NS:
                shas[path] = row[5]
                continue
            try:
                sha = file_sha256(path)
            except OSError:
                shas[path] = None
                continue
            self.hashed += 1
            if row is not None and row[5] != sha:
                self.changed.append(path)
            shas[path] = sha
            updates.append((path, *key, now, sha))
        if updates:
            self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", updates)
            self._db.commit()
        return [(path, shas[path], _stamp(stats[path])) for path in paths]

    def changed_names(self, names: dict[str, str] | None = None) -> list[str]:
        """The changed files (as ``names`` writes them, else their paths), at most ``SHOWN``."""
        names = names or {}
        return [names.get(path, path) for path in self.changed[:SHOWN]]


def cache_for(folder: str | os.PathLike | None, full: bool | None = None) -> ContentCache:
    """The content cache kept in ``folder`` (a run's output folder), or an in-memory one."""
    return ContentCache(Path(folder) / CACHE_NAME if folder is not None else None, full=full)


def _stamp(found: os.stat_result | None) -> tuple | None:
    """What says a file is unchanged since it was hashed: mode, size, mtime, ctime, inode (None:
    missing, or not a regular file)."""
    if found is None or not stat_module.S_ISREG(found.st_mode):
        return None
    return found.st_mode, found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino & _INO_MASK


_NO_FILE = (-1, -1, -1, -1, -1)
_INO_MASK = (1 << 63) - 1  # inodes stored as signed 64-bit integers


class _Stamps:
    """A digest of files' stamps in order: the stamps as 64-bit integers, hashed a block at a
    time (C speed, which matters at 500K files)."""

    BLOCK = 5 * 8192

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.values = array("q")

    def add(self, stamp: tuple | None) -> None:
        self.values.extend(stamp or _NO_FILE)
        if len(self.values) >= self.BLOCK:
            self.flush()

    def flush(self) -> None:
        self.digest.update(self.values)
        self.values = array("q")

    def hexdigest(self) -> str:
        self.flush()
        return self.digest.hexdigest()


def _stamps_of(paths: Iterable[str]) -> str:
    """``_Stamps`` of files by one ``stat`` each, relative to their folder (opened once per run of
    paths in one folder: a shorter lookup than the whole path)."""
    stamps = _Stamps()
    stat, regular = os.stat, stat_module.S_ISREG
    values = stamps.values
    extend = values.extend
    current, fd = None, None
    try:
        for path in paths:
            folder, _, name = path.rpartition("/")
            if folder != current:
                if fd is not None:
                    os.close(fd)
                current, fd = folder, None
                try:
                    fd = os.open(folder or "/", os.O_RDONLY | os.O_DIRECTORY)
                except (OSError, ValueError):
                    pass
            try:
                found = stat(name, dir_fd=fd) if fd is not None else stat(path)
            except (OSError, ValueError):
                extend(_NO_FILE)
                continue
            extend((found.st_mode, found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino & _INO_MASK)
                   if regular(found.st_mode) else _NO_FILE)
            if len(values) >= _Stamps.BLOCK:
                stamps.digest.update(values)
                del values[:]
    finally:
        if fd is not None:
            os.close(fd)
    return stamps.hexdigest()


def files_digest(cache: ContentCache, entries: Iterable[tuple[str, str]],
                 keep: list[str] | None = None) -> dict[str, Any]:
    """The signature of a list of files, ``(name, absolute path)`` in order (a name: the path as a
    record writes it, so the signature does not depend on where the run folder is): how many,
    how many are missing (or not regular files), and a digest of every name with its content.
    ``keep``: a list the paths are appended to, and ``"stamps"`` in the result, a digest of their
    stamps (``listing_digest`` stores both to check an unchanged listing without lookups)."""
    digest, stamps = hashlib.sha256(), _Stamps()
    count = missing = 0
    names: deque[str] = deque()  # at most one batch: the names of the paths being looked up

    def paths() -> Iterator[str]:
        for name, path in entries:
            names.append(name)
            if keep is not None:
                keep.append(path)
            yield path

    for _path, sha, stamp in cache.many(paths()):
        count += 1
        missing += sha is None
        digest.update(names.popleft().encode("utf-8", "surrogatepass") + b"\t" + (sha or "-").encode() + b"\n")
        stamps.add(stamp)
    found = {"files": count, "missing": missing, "digest": digest.hexdigest()[:32]}
    return {**found, "stamps": stamps.hexdigest()} if keep is not None else found


def listing_digest(cache: ContentCache, listing: Path, root: Path) -> dict[str, Any]:
    """``files_digest`` of the images a records file names (``record_images``). When neither the
    file nor any image changed since the last time (same stamps), the stored result is returned
    after one ``stat`` per image and no lookup: a 500K-image mix is checked in seconds."""
    import json
    import zlib

    key = f"{listing}\0{root}"
    try:
        stamp = repr(_stamp(os.stat(listing))).encode()
    except OSError:
        stamp = b"None"
    row = cache._db.execute("SELECT stamp, paths, stamps, result FROM listings WHERE key = ?", (key,)).fetchone()
    if row is not None and not cache.full and row[0] == stamp:
        blob = zlib.decompress(row[1]).decode("utf-8", "surrogateescape")
        if _stamps_of(blob.split("\0") if blob else []) == row[2]:
            return json.loads(row[3])
    kept: list[str] = []
    cache.racy = False
    found = files_digest(cache, record_images(listing, root), keep=kept)
    result = {k: v for k, v in found.items() if k != "stamps"}
    if not cache.racy:  # a file modified just now may change again within its mtime's tick
        blob = zlib.compress("\0".join(kept).encode("utf-8", "surrogateescape"), 1)
        cache._db.execute("INSERT OR REPLACE INTO listings VALUES (?, ?, ?, ?, ?)",
                          (key, stamp, blob, found["stamps"], json.dumps(result)))
        cache._db.commit()
    return result


def folder_files(folder: Path) -> Iterator[tuple[str, str]]:
    """``(path relative to folder, absolute path)`` of every file under ``folder``, sorted, without
    following symbolic links to folders (a link loop must not hang a fingerprint)."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if name == CACHE_NAME or name.startswith(CACHE_NAME + "-"):
                continue
            full = os.path.join(root, name)
            yield os.path.relpath(full, folder), full


def content_identity(path: Path, cache: ContentCache) -> dict[str, Any] | None:
    """A file's size and sha256 (as ``adamllm.fingerprint.identity`` writes it); a folder's files
    and a digest of their names and contents; None when it is neither."""
    if path.is_file():
        sha = cache.sha(path)
        return {"size": path.stat().st_size, "sha256": sha[:32] if sha else None}
    if path.is_dir():
        found = files_digest(cache, folder_files(path))
        return {"files": found["files"], "content": found["digest"]}
    return None


def record_images(path: Path, root: Path) -> Iterator[tuple[str, str]]:
    """``(name as written, absolute path)`` of every image the records of a JSONL (or JSON array)
    file name in ``images`` (or ``image``: image-caption pairs), resolved as their readers do: under ``root``,
    else (a bare name) in its ``images/`` folder. Lines that do not parse are left out (the
    trainer sets them aside)."""
    import json

    sibling = root / "images"
    check_sibling = sibling.is_dir()

    def records() -> Iterator[Any]:
        with path.open("rb") as handle:
            if path.suffix == ".json":
                try:
                    yield from json.load(handle)
                except (ValueError, TypeError):
                    return
                return
            for line in handle:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue

    base = str(root)
    for record in records():
        images = record.get("images", record.get("image")) if isinstance(record, dict) else None
        for image in [images] if isinstance(images, str) else images if isinstance(images, list) else []:
            if not isinstance(image, str):
                continue
            full = os.path.join(base, image)
            if check_sibling and not image.startswith("images/") and not os.path.exists(full):
                full = os.path.join(str(sibling), image)
            yield image, full
