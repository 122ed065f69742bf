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


def write_seed_folder(folder: Path, names=("captions.json", "precise.json", "informative.json", "images")) -> Path:
    """A ``data.tune`` seed folder in the three public seed layouts (captions, precise QA,
    informative QA; JSON arrays) with real PNGs: four images, three with all three parts (d has no
    informative pair), two under ``vflan/`` (joined by base name)."""
    from PIL import Image

    def human(value):
        return {"from": "human", "value": value}

    def gpt(value):
        return {"from": "gpt", "value": value}

    captions, precise, informative, images = names
    (folder / images).mkdir(parents=True)
    entries = {"captions": [], "precise": [], "informative": []}
    for i, (name, colour, shape) in enumerate([("a.png", "red", "square"), ("b.png", "blue", "circle"),
                                              ("c.png", "green", "star"), ("d.png", "white", "cross")]):
        Image.new("RGB", (28 + 4 * i, 28), colour).save(folder / images / name)
        caption = f"A {colour} {shape} on a grey background."
        entries["captions"].append({"image": f"vflan/{name}" if i % 2 else name, "caption": caption,
                                    "conversations": [human("<image>\nCaption it."), gpt(caption)]})
        entries["precise"].append({"image": name, "task_name": "vqa",
                                   "conversations": [human("<image>\nWhat colour is it?"), gpt(colour.title() + ".")]})
        if name != "d.png":
            entries["informative"].append({"image": name, "conversations": [
                human("What shape is it, and why?\n<image>"),
                gpt(f"It has the outline of a {shape}, so it is a {shape}.")]})
    # caption paths under vflan/ must exist there too
    (folder / images / "vflan").mkdir()
    for name in ("b.png", "d.png"):
        (folder / images / name).rename(folder / images / "vflan" / name)
    for key, file in (("captions", captions), ("precise", precise), ("informative", informative)):
        (folder / file).write_text(json.dumps(entries[key], indent=2))
    return folder
