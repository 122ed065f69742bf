"""Small training data written on the fly: ShareGPT-style mixes with real PNG images."""
from __future__ import annotations

import json
import random
from pathlib import Path

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black"]
SHAPES = ["square", "circle", "triangle", "star"]


def write_mix(folder: Path, n=12, seed=0, two_stage=False, long_every=0):
    """A ShareGPT-style mix: one image per example, caption turn (+ a task turn every other one)."""
    from PIL import Image

    folder = Path(folder)
    rng = random.Random(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        colour, shape = rng.choice(COLOURS), rng.choice(SHAPES)
        size = (rng.choice([32, 48, 64]), rng.choice([32, 48, 64]))
        name = f"images/{i}.png"
        Image.new("RGB", size, colour).save(folder / name)
        caption = f"A {colour} {shape}."
        if long_every and i % long_every == 0:
            caption = " ".join([caption] * 80)
        messages = [{"role": "user", "content": "<image>Describe the image."},
                    {"role": "assistant", "content": caption}]
        record = {"id": f"ex{i}", "messages": messages, "images": [name]}
        if two_stage:
            record["stage"] = 1 if i % 2 == 0 else 2
            if i % 2:
                record["messages"] = [{"role": "user", "content": "<image>What colour is it?"},
                                      {"role": "assistant", "content": colour}]
        elif i % 2:
            messages += [{"role": "user", "content": "What colour is it?"}, {"role": "assistant", "content": colour}]
        lines.append(json.dumps(record))
    path = folder / "mix.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_pairs(folder: Path, n=6, seed=0, as_json_array=True) -> Path:
    """Domain image-caption pairs in the released ShareGPT layout, with real PNG images: a
    pretty-printed JSON array (as released) or JSONL."""
    from PIL import Image

    folder = Path(folder)
    rng = random.Random(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        colour, shape = rng.choice(COLOURS), rng.choice(SHAPES)
        name = f"images/pair{i}.png"
        Image.new("RGB", (rng.choice([32, 48]), rng.choice([32, 48])), colour).save(folder / name)
        records.append({"images": [name], "messages": [
            {"role": "user", "content": "<image>Describe the image."},
            {"role": "assistant", "content": f"A {colour} {shape} on a plain background."}]})
    if as_json_array:
        path = folder / "image_caption_pairs.json"
        path.write_text(json.dumps(records, indent=2) + "\n")
    else:
        path = folder / "image_caption_pairs.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
