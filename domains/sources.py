"""Readers of the image-caption sources a domain declares (input of the ``synthesize`` stage).

Each reader turns one local file (a JSON list or JSONL) into ``adamllm.records.ImageCaptionPair``
records (``id``, ``image`` relative to the file's folder, ``caption``, ``instruction``). Formats:

- ``sharegpt``: the released ``image_caption_pairs`` files, ``{"images": [path], "messages":
  [{"role": "user", "content": "<image>{instruction}"}, {"role": "assistant", "content": caption}]}``;
  also the ``{"image": ..., "conversations": [{"from": "human"|"gpt", "value": ...}]}`` spelling,
  which is how PubMedVision's records (format ``pubmedvision``) are written;
- ``recipe1m``: Recipe1M-style recipe records ``{"id", "title", "ingredients", "instructions",
  "image"}`` (ingredients and instructions as strings or ``{"text": ...}`` items, as in Recipe1M's
  ``layer1.json``, joined with one image path); the caption is the recipe: title, ingredients, steps.

Only single-image records are used (as the released pairs were built); others are skipped and
counted in ``SourceStats``. Image paths stay relative but may not leave the file's folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from adamllm.backbone import IMAGE_PLACEHOLDER
from adamllm.io import DataError, PathEscapeError, iter_jsonl, resolve_under
from adamllm.records import ImageCaptionPair

FORMATS = ("sharegpt", "pubmedvision", "recipe1m")
#: The caption instruction of recipe captions (ours; the food caption turn asks for name, ingredients, steps).
RECIPE_INSTRUCTION = "What is this dish called, what goes into it, and how is it made?"


@dataclass
class SourceStats:
    read: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _records(path: Path) -> Iterator[tuple[str, dict]]:
    if path.suffix == ".jsonl":
        for line, record in iter_jsonl(path):
            yield f"{path}:{line}", record
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of records")
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise DataError(f"{path} record {index}: expected a JSON object")
        yield f"{path} record {index}", record


def read_caption_source(path: str | Path, format: str, *, limit: int | None = None,
                        stats: SourceStats | None = None) -> Iterator[ImageCaptionPair]:
    """Yield the image-caption pairs of one local source file."""
    if format not in FORMATS:
        raise ValueError(f"unknown caption source format {format!r}; formats: {', '.join(FORMATS)}")
    path = Path(path)
    stats = stats if stats is not None else SourceStats()
    parse = _recipe if format == "recipe1m" else _conversation
    count = 0
    for index, (where, record) in enumerate(_records(path)):
        if limit is not None and count >= limit:
            return
        images = record.get("images", record.get("image"))
        images = [images] if isinstance(images, str) else list(images or [])
        if len(images) != 1:
            stats.skip("not_one_image")
            continue
        image = images[0]
        if not isinstance(image, str):
            raise DataError(f"{where}: an image must be a path, got {type(image).__name__}")
        try:
            resolve_under(path.parent, image)
        except PathEscapeError as exc:
            raise DataError(f"{where}: {exc}") from None
        parsed = parse(record, where)
        if parsed is None:
            stats.skip("no_caption")
            continue
        instruction, caption = parsed
        stats.read += 1
        count += 1
        yield ImageCaptionPair(id=str(record.get("id", index)), image=image, caption=caption,
                               instruction=instruction)


def _conversation(record: dict, where: str) -> tuple[str, str] | None:
    turns = record.get("messages") or record.get("conversations")
    if not isinstance(turns, list) or len(turns) < 2:
        raise DataError(f"{where}: expected 'messages' (or 'conversations') with a user and an assistant turn")
    texts = []
    for turn in turns[:2]:
        if not isinstance(turn, dict):
            raise DataError(f"{where}: a turn must be an object")
        texts.append(str(turn.get("content", turn.get("value", ""))))
    instruction = texts[0].replace(IMAGE_PLACEHOLDER, "").strip()
    caption = texts[1].strip()
    return (instruction, caption) if caption else None


def _items(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value] if value else []
    return [str(i.get("text", "") if isinstance(i, dict) else i).strip() for i in items if i]


def _recipe(record: dict, where: str) -> tuple[str, str] | None:
    title = str(record.get("title") or "").strip()
    ingredients, steps = _items(record.get("ingredients")), _items(record.get("instructions"))
    if not title and not ingredients and not steps:
        return None
    lines = [title] if title else []
    if ingredients:
        lines += ["Ingredients:"] + [f"- {item}" for item in ingredients if item]
    if steps:
        lines += ["Instructions:"] + [f"{n}. {step}" for n, step in enumerate((s for s in steps if s), 1)]
    return RECIPE_INSTRUCTION, "\n".join(lines)
