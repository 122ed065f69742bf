"""Readers of the three public seed files a synthesizer is tuned on, joined into seed records.

The layouts are those of docs/method.md §12, each a JSON array (pretty-printed, as released):

* the **caption file** (ALLaVA captions of the VisionFLAN images): ``image``, ``caption`` and
  ``conversations`` (human / gpt; the gpt turn is the caption, used when ``caption`` is absent);
* the **precise QA file** (VisionFLAN 191 tasks): ``image``, ``task_name``, ``conversations``
  (the human turn holds the instruction with ``<image>`` at its start, ``<image>\\n...``, or its
  end, ``...\\n<image>``; the gpt turn is the precise answer). An image may have many entries;
* the **informative QA file** (ALLaVA instruct): the same without ``task_name``.

Join rules (docs/method.md §2): entries are joined on the image's **base file name**; the caption
file decides which images exist (a repeated image after its first entry is skipped and counted,
not an error: the layout has repeats); an image is used only with a caption, at least one precise
and at least one informative pair; its pairs keep their file order. QA entries whose image has no
caption are counted, not rejected.

Images: a caption entry's ``image`` resolves under the image root as written (the ALLaVA download
layout, ``allava_vflan/images/images_191task_1k/xxx.jpg`` under its top folder); a path not found
there is looked up by its base name among every file under the root, indexed once (the flat
layout the reference documents: the root is ``images_191task_1k`` itself). Both layouts give the
same seed records. A base name shared by two files, when the lookup is needed, is a bad entry
naming both files (kind ``ambiguous_image``); lookups made are counted (``images_by_base_name``).

A structurally bad entry (not an object, a missing or empty field, turns that are not one human
and one gpt turn, an ``<image>`` placeholder in the middle of an instruction, an image path that
leaves the image root or names no file) goes to the optional ``adamllm.quarantine.Quarantine``
with its ``file:line``; without one it raises ``DataError`` naming them.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Optional

from pydantic import BaseModel, ConfigDict, Field

from adamllm.io import DataError, iter_records, resolve_under

IMAGE_PLACEHOLDER = "<image>"
_LEADING = re.compile(r"^\s*<image>\s*")
_TRAILING = re.compile(r"\s*<image>\s*$")


class SeedPair(BaseModel):
    """One instruction with its answer, from a precise or an informative QA file."""

    model_config = ConfigDict(frozen=True)
    instruction: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    task_name: Optional[str] = Field(None, description="The VisionFLAN task (precise pairs only).")
    where: str = Field("", description="file:line of the entry it was read from.")


class SeedRecord(BaseModel):
    """One usable seed image: its caption and every precise and informative pair for it."""

    model_config = ConfigDict(frozen=True)
    id: str = Field(description="The join key: the image's base file name.")
    image: str = Field(description="The image file, absolute, resolved inside the image root.")
    caption: str = Field(min_length=1)
    precise: list[SeedPair] = Field(min_length=1)
    informative: list[SeedPair] = Field(min_length=1)
    where: str = Field("", description="file:line of its caption entry.")

    @property
    def task_name(self) -> Optional[str]:
        """The task of its first precise pair (VisionFLAN images belong to one task each)."""
        return self.precise[0].task_name


@dataclass
class SeedData:
    """The joined seed records (caption-file order), the image root and what was left out."""

    records: list[SeedRecord]
    image_root: Path
    stats: dict[str, Any] = field(default_factory=dict)


def join_key(image: str) -> str:
    """The base file name of an image path (``/`` or ``\\`` separated)."""
    return PurePosixPath(image.replace("\\", "/")).name


def strip_placeholder(text: str) -> str:
    """The instruction of a human turn: ``<image>`` removed from its start or its end.

    Raises ``ValueError`` when a placeholder remains elsewhere (the instruction would be ambiguous).
    """
    stripped = _TRAILING.sub("", _LEADING.sub("", text, count=1), count=1).strip()
    if IMAGE_PLACEHOLDER in stripped:
        raise ValueError("an <image> placeholder inside the instruction (only its start or end is allowed)")
    return stripped


def _field(entry: dict, name: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field {name!r} is missing or empty")
    return value.strip()


def _turns(entry: dict) -> tuple[str, str]:
    """``(human, gpt)`` values of a two-turn ``conversations`` list."""
    turns = entry.get("conversations")
    if not isinstance(turns, list) or len(turns) != 2:
        raise ValueError("'conversations' must hold exactly two turns (human, then gpt)")
    roles = [t.get("from") if isinstance(t, dict) else None for t in turns]
    if roles != ["human", "gpt"]:
        raise ValueError(f"'conversations' turns must be from 'human' then 'gpt', got {roles}")
    values = [t.get("value") for t in turns]
    if not all(isinstance(v, str) for v in values):
        raise ValueError("a turn's 'value' is not a string")
    return values[0], values[1]


class _BadImage(ValueError):
    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Reader:
    def __init__(self, image_root: Path, quarantine) -> None:
        self.image_root = Path(image_root)
        self.quarantine = quarantine
        self.counts: Counter = Counter()
        self._by_name: dict[str, list[str]] | None = None

    def _index(self) -> dict[str, list[str]]:
        """Every file under the image root by base name (relative paths, sorted), built once."""
        if self._by_name is None:
            index: dict[str, list[str]] = {}
            root = str(self.image_root)
            for folder, _dirs, files in os.walk(root):
                for name in files:
                    index.setdefault(name, []).append(os.path.relpath(os.path.join(folder, name), root))
            self._by_name = {name: sorted(paths) for name, paths in index.items()}
        return self._by_name

    def image(self, image: str) -> Path:
        """The image file: its path as written under the root, else the one file of its base name."""
        try:
            resolved = resolve_under(self.image_root, image)
        except DataError as exc:
            raise _BadImage(str(exc), "bad_image_path") from None
        if resolved.is_file():
            return resolved
        key = join_key(image)
        found = self._index().get(key, [])
        if not found:
            raise _BadImage(f"image {image!r} not found under {self.image_root} (nor a file named {key!r} "
                            f"anywhere under it)", "missing_image")
        if len(found) > 1:
            raise _BadImage(f"image {image!r} not found under {self.image_root}, and its base name {key!r} names "
                            f"{len(found)} files there: {', '.join(found)}; which one is meant is unclear",
                            "ambiguous_image")
        try:
            resolved = resolve_under(self.image_root, found[0])
        except DataError as exc:
            raise _BadImage(str(exc), "bad_image_path") from None
        self.counts["images_by_base_name"] += 1
        return resolved

    def bad(self, where: str, reason: str, kind: str = "bad_seed") -> None:
        if self.quarantine is None:
            raise DataError(f"{where}: {reason}")
        self.quarantine.reject(where, reason, kind=kind)

    def entries(self, path: Path) -> Iterator[tuple[str, dict]]:
        on_error = (lambda where, message: self.bad(where, message)) if self.quarantine is not None else None
        yield from iter_records(path, on_error=on_error)

    def captions(self, path: Path) -> dict[str, tuple[str, str, str]]:
        """key -> (absolute image path, caption, where), first entry per key."""
        found: dict[str, tuple[str, str, str]] = {}
        for where, entry in self.entries(path):
            try:
                image = _field(entry, "image")
                caption = entry.get("caption")
                if not (isinstance(caption, str) and caption.strip()):
                    caption = _turns(entry)[1] if entry.get("conversations") is not None else caption
                if not (isinstance(caption, str) and caption.strip()):
                    raise ValueError("no caption (field 'caption' and the gpt turn are missing or empty)")
            except ValueError as exc:
                self.bad(where, str(exc))
                continue
            key = join_key(image)
            if key in found:
                self.counts["duplicate_captions"] += 1
                continue
            try:
                resolved = self.image(image)
            except _BadImage as exc:
                self.bad(where, str(exc), exc.kind)
                continue
            found[key] = (str(resolved), caption.strip(), where)
        return found

    def pairs(self, path: Path, with_task: bool) -> dict[str, list[SeedPair]]:
        found: dict[str, list[SeedPair]] = {}
        for where, entry in self.entries(path):
            try:
                image = _field(entry, "image")
                task = _field(entry, "task_name") if with_task else None
                human, gpt = _turns(entry)
                instruction, answer = strip_placeholder(human), gpt.strip()
                if not instruction or not answer:
                    raise ValueError("an empty instruction or answer")
            except ValueError as exc:
                self.bad(where, str(exc))
                continue
            found.setdefault(join_key(image), []).append(
                SeedPair(instruction=instruction, answer=answer, task_name=task, where=where))
        return found


def read_seeds(captions: str | Path, precise: str | Path, informative: str | Path, image_root: str | Path, *,
               quarantine=None) -> SeedData:
    """Read and join the three seed files; images are confined to (and must exist in) ``image_root``,
    found by their path as written, else by their base name (module docstring)."""
    reader = _Reader(Path(image_root), quarantine)
    captioned = reader.captions(Path(captions))
    precise_pairs = reader.pairs(Path(precise), with_task=True)
    informative_pairs = reader.pairs(Path(informative), with_task=False)
    counts = reader.counts
    records = []
    for key, (image, caption, where) in captioned.items():
        p, i = precise_pairs.get(key, []), informative_pairs.get(key, [])
        if not p:
            counts["no_precise_pair"] += 1
        if not i:
            counts["no_informative_pair"] += 1
        if p and i:
            records.append(SeedRecord(id=key, image=image, caption=caption, precise=p, informative=i, where=where))
    counts["precise_without_caption"] = sum(len(v) for k, v in precise_pairs.items() if k not in captioned)
    counts["informative_without_caption"] = sum(len(v) for k, v in informative_pairs.items() if k not in captioned)
    stats = {"captioned_images": len(captioned), "seed_images": len(records),
             **{k: counts.get(k, 0) for k in ("duplicate_captions", "no_precise_pair", "no_informative_pair",
                                               "precise_without_caption", "informative_without_caption",
                                               "images_by_base_name")},
             **(quarantine.stats() if quarantine is not None else {})}
    return SeedData(records=records, image_root=Path(image_root).resolve(), stats=stats)
