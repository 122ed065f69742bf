"""The compose stage's writers: the mix with its images beside it, in the form each trainer reads.

``OUT/compose/`` is a self-contained folder: copy it (or the whole run folder) anywhere and every
form still finds its images.

- ``images/``: the mix's images. A record names an image by its path relative to the mix's folder
  (``images/<its path under the pairs' image root>``), so the folder holds the same tree as the
  domain's image folder, restricted to the images the mix uses (an image outside that root goes
  to ``images/_external/<hash of its path>/<file name>``). Files are hard links to the pair
  images where the file system allows it (no data copied, even for 500K images), else copies
  (another file system, or one without hard links). A rerun keeps the files that are already
  there (the same file, or a copy of the same size and time), links or copies the new ones and
  removes those the mix no longer names.
- ``mix.jsonl`` (always; the ``train`` stage and the ``sft`` trainer read it): ShareGPT style,
  ``{"messages": [{"role": "user", "content": "<image>..."}, {"role": "assistant", ...}],
  "images": ["images/..."], "id": ...}``, the ``<image>`` placeholder where the image goes.

Formats (``FORMATS``; the composer's ``formats`` option picks them, default ``DEFAULT_FORMATS``):

- ``llamafactory``: ``dataset_info.json`` beside the mix declares it as the sharegpt dataset
  ``adamllm_mix`` (columns ``messages``/``images``, tags ``role``/``content``/``user``/
  ``assistant``/``system``), so LLaMA-Factory's ``dataset_dir: OUT/compose`` with ``dataset:
  adamllm_mix`` trains on ``mix.jsonl`` as it is. Its ``media_dir`` defaults to ``dataset_dir``,
  which the image paths are relative to.
- ``trl``: ``mix_trl.jsonl``, TRL's conversational vision-language format (TRL's "Vision datasets"
  in its dataset formats guide): ``{"images": ["images/..."], "messages": [{"role": "user",
  "content": [{"type": "image"}, {"type": "text", "text": "..."}]}, {"role": "assistant",
  "content": [{"type": "text", "text": "..."}]}]}``: every ``<image>`` placeholder becomes an image
  block in its place and the text holds no placeholder (TRL adds its own image blocks in front of
  a plain-string user turn, so the ShareGPT mix would train on a literal ``<image>``). TRL opens
  the paths as given: run it from ``OUT/compose`` or join them with that folder.
- ``datasets``: ``dataset/``, ``mix.jsonl`` as a ``datasets`` ``save_to_disk`` folder
  (``load_from_disk``).

A format not selected has its files removed, so the folder never holds a stale form.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Sequence

from .backbone import IMAGE_PLACEHOLDER
from .io import iter_records, write_jsonl
from .stages import StageError

MixFormat = Literal["llamafactory", "trl", "datasets"]
FORMATS: tuple[str, ...] = ("llamafactory", "trl", "datasets")
DEFAULT_FORMATS: tuple[str, ...] = ("llamafactory", "datasets")
IMAGES = "images"  # OUT/compose/images/: the mix's images
EXTERNAL = "_external"  # images/_external/: images that lie outside the pairs' image root
DATASET = "dataset"  # datasets: the mix as a save_to_disk folder
DATASET_INFO = "dataset_info.json"  # llamafactory
DATASET_NAME = "adamllm_mix"  # the dataset's name in dataset_info.json
TRL_MIX = "mix_trl.jsonl"  # trl
#: What each format writes (removed when the format is not selected).
OUTPUTS: dict[str, str] = {"llamafactory": DATASET_INFO, "trl": TRL_MIX, "datasets": DATASET}


# -- the image folder ----------------------------------------------------------------------------
def _same_file(source: Path, target: Path) -> bool:
    """``target`` is ``source`` (a hard link) or a copy of it (same size and modification time)."""
    try:
        if os.path.samefile(source, target):
            return True
        a, b = source.stat(), target.stat()
    except OSError:
        return False
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


def place(source: Path, target: Path) -> str:
    """Put ``source`` at ``target``: ``kept`` (already there), ``linked`` (a hard link) or
    ``copied`` (``shutil.copy2``, which keeps the time, when the file system refuses the link)."""
    if target.is_file() and not target.is_symlink() and _same_file(source, target):
        return "kept"
    if target.exists() or target.is_symlink():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
        return "linked"
    except OSError:  # another file system (EXDEV), or one without hard links
        shutil.copy2(source, target)
        return "copied"


class ImageFolder:
    """``mix_dir/images/``: ``add(path)`` places an image there and returns the name a record uses
    for it (relative to ``mix_dir``); ``prune()`` removes what this compose did not add.

    ``root``: the folder of the pair images (``StageContext.pair_images_root``); an image keeps
    its path under it. A relative image path is read against ``root``.
    """

    def __init__(self, mix_dir: Path, root: Path | None) -> None:
        self.mix_dir = Path(mix_dir)
        self.folder = self.mix_dir / IMAGES
        self.root = Path(root).resolve() if root is not None else None
        self.names: dict[Path, str] = {}
        self.counts: Counter = Counter()

    def _source(self, image: str) -> Path:
        path = Path(image).expanduser()
        if not path.is_absolute():
            if self.root is None:
                raise StageError(f"image {image!r} is a relative path, but the run has no pairs folder to read "
                                 f"it against")
            path = self.root / path
        return path.resolve()

    def name(self, source: Path) -> str:
        """``images/<path under root>``, or ``images/_external/<hash>/<file name>`` outside it."""
        relative = None
        if self.root is not None:
            try:
                relative = source.relative_to(self.root)
            except ValueError:
                relative = None
        if relative is None or not relative.parts or relative.parts[0] == EXTERNAL:
            digest = hashlib.sha256(str(source).encode("utf-8")).hexdigest()[:16]
            relative = Path(EXTERNAL, digest, source.name)
        return (Path(IMAGES) / relative).as_posix()

    def add(self, image: str) -> str:
        source = self._source(image)
        if source in self.names:
            return self.names[source]
        if not source.is_file():
            raise StageError(f"the mix names image {image!r}, which is not a file")
        name = self.name(source)
        target = self.mix_dir / name
        if target.resolve() != source:  # an image already in the folder stays where it is
            self.counts[place(source, target)] += 1
        else:
            self.counts["kept"] += 1
        self.names[source] = name
        return name

    def relocate(self, examples: Iterable[Any]) -> Iterator[Any]:
        """Each ``TrainingExample`` (a copy) with its images placed here and renamed."""
        for example in examples:
            yield example.model_copy(update={"images": [self.add(image) for image in example.images]})

    def prune(self) -> int:
        """Remove the files (and then empty folders) that this compose did not name; returns how many."""
        if not self.folder.is_dir():
            return 0
        wanted = {self.mix_dir / name for name in self.names.values()}
        removed = 0
        for path in sorted(self.folder.rglob("*"), reverse=True):  # children before their folders
            if path.is_dir() and not path.is_symlink():
                if not any(path.iterdir()):
                    path.rmdir()
            elif path not in wanted:
                path.unlink()
                removed += 1
        self.counts["removed"] += removed
        return removed

    def stats(self) -> dict[str, Any]:
        return {"folder": IMAGES, "files": len(self.names),
                **{key: self.counts.get(key, 0) for key in ("linked", "copied", "kept", "removed")}}


# -- the formats ---------------------------------------------------------------------------------
def llamafactory_info(file_name: str = "mix.jsonl") -> dict[str, Any]:
    """LLaMA-Factory's ``dataset_info.json`` for the mix: a sharegpt dataset with OpenAI-style
    ``role``/``content`` messages and an ``images`` column."""
    return {DATASET_NAME: {
        "file_name": file_name, "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"}}}


def content_blocks(text: str) -> list[dict[str, str]]:
    """A ShareGPT message text as TRL's structured content: an ``{"type": "image"}`` block for each
    ``<image>`` placeholder, in its place, and the text between them (stripped; empty pieces
    dropped) as ``{"type": "text", "text": ...}``. A text without a placeholder is one text block,
    as written."""
    if IMAGE_PLACEHOLDER not in text:
        return [{"type": "text", "text": text}]
    blocks: list[dict[str, str]] = []
    for k, piece in enumerate(text.split(IMAGE_PLACEHOLDER)):
        if k:
            blocks.append({"type": "image"})
        if piece.strip():
            blocks.append({"type": "text", "text": piece.strip()})
    return blocks


def to_trl(record: dict[str, Any]) -> dict[str, Any]:
    """One ShareGPT record of the mix in TRL's conversational vision-language form (see the module
    docstring); ``id`` and ``stage`` are kept. Raises ``StageError`` when the placeholders and the
    images disagree."""
    messages = [{"role": m["role"], "content": content_blocks(m["content"])} for m in record["messages"]]
    images = list(record.get("images") or [])
    blocks = sum(1 for m in messages for block in m["content"] if block["type"] == "image")
    if blocks != len(images):
        raise StageError(f"example {record.get('id')!r}: {blocks} {IMAGE_PLACEHOLDER} placeholders but "
                         f"{len(images)} images")
    out: dict[str, Any] = {"images": images, "messages": messages}
    out.update({key: record[key] for key in ("id", "stage") if record.get(key) is not None})
    return out


def write_trl(mix: Path, target: Path) -> int:
    return write_jsonl(target, (to_trl(record) for _, record in iter_records(mix)))


def write_datasets_folder(mix: Path, folder: Path) -> Path:
    """``mix`` as a ``datasets`` folder (``load_from_disk``), replaced in one rename."""
    import tempfile

    from datasets import Dataset

    with tempfile.TemporaryDirectory(prefix=".dataset-", dir=folder.parent) as tmp:
        dataset = Dataset.from_json(str(mix), cache_dir=str(Path(tmp) / "cache"))
        dataset.save_to_disk(str(Path(tmp) / "saved"))
        del dataset
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(Path(tmp) / "saved", folder)
    return folder


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def check_formats(formats: Sequence[str]) -> list[str]:
    """The formats in ``FORMATS`` order, each once; an unknown one is a ``StageError``."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise StageError(f"unknown mix format(s) {', '.join(map(repr, unknown))}; formats: {', '.join(FORMATS)}")
    return [f for f in FORMATS if f in formats]


def write_formats(mix: Path, formats: Sequence[str]) -> dict[str, str]:
    """Write the selected forms of ``mix`` beside it and remove the others; returns
    ``{format: file or folder name}`` of what was written."""
    folder = mix.parent
    written: dict[str, str] = {}
    for name in FORMATS:
        target = folder / OUTPUTS[name]
        if name not in formats:
            _remove(target)
            continue
        if name == "llamafactory":
            target.write_text(json.dumps(llamafactory_info(mix.name), indent=2) + "\n", encoding="utf-8")
        elif name == "trl":
            write_trl(mix, target)
        else:
            write_datasets_folder(mix, target)
        written[name] = OUTPUTS[name]
    return written
