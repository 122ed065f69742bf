"""The food domain's own image-caption reader: Recipe1M-style recipe records.

Core reads the released ShareGPT layout itself (``adamllm.pairs``); a format it does not know is
read by the domain that declares it, through ``SourceSpec(reader="module:function")``. Recipe1M
records are ``{"id", "title", "ingredients", "instructions", "image"}`` (ingredients and
instructions as strings or ``{"text": ...}`` items, as in Recipe1M's ``layer1.json``, joined with one
image path); the caption is the recipe: title, ingredients, steps. Records with not exactly one
image are skipped and counted. Image paths resolve as core's do: under the configured image folder
(the domain section's ``images``) when given, else beside the file, then in its sibling ``images/``
folder; they may not leave that root.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from adamllm.pairs import PairStats, read_single_image_pairs
from adamllm.records import ImageCaptionPair

#: The caption instruction of recipe captions (ours; the food caption turn asks for name, ingredients, steps).
RECIPE_INSTRUCTION = "What is this dish called, what goes into it, and how is it made?"


def _items(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value] if value else []
    return [str(i.get("text", "") if isinstance(i, dict) else i).strip() for i in items if i]


def recipe_caption(record: dict, where: str = "") -> tuple[str, str] | None:
    """``(caption instruction, recipe as text)``; None for a record with no recipe in it."""
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


def read_recipe_pairs(path: str | Path, stats: PairStats | None = None, image_root: str | Path | None = None,
                      ) -> Iterator[tuple[str, ImageCaptionPair]]:
    """``(where, pair)`` for each single-image recipe of a JSON array or JSONL file; image paths
    resolve as core's pairs do (``adamllm.pairs.PairImages``)."""
    return read_single_image_pairs(path, recipe_caption, stats, image_root)
