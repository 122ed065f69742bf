"""Regenerates the quickstart's bundled data (deterministic): coloured shapes with captions, and a
small benchmark about them in the public VQA layout. Run: python make_data.py"""
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
COLOURS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 60, 220), "yellow": (240, 210, 20)}
SHAPES = ("square", "circle", "triangle")
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}


def draw(colour: str, shape: str, background: str, size: int) -> Image.Image:
    image = Image.new("RGB", (size, size), BACKGROUNDS[background])
    d = ImageDraw.Draw(image)
    box = (size // 5, size // 5, size - size // 5, size - size // 5)
    if shape == "square":
        d.rectangle(box, fill=COLOURS[colour])
    elif shape == "circle":
        d.ellipse(box, fill=COLOURS[colour])
    else:
        d.polygon([(size // 2, box[1]), (box[2], box[3]), (box[0], box[3])], fill=COLOURS[colour])
    return image


def main() -> None:
    rng = random.Random(0)
    combos = [(c, s, b) for c in COLOURS for s in SHAPES for b in BACKGROUNDS]
    (HERE / "data" / "images").mkdir(parents=True, exist_ok=True)
    pairs = []
    for i, (colour, shape, background) in enumerate(combos * 2):
        name = f"images/{i:02d}.png"
        draw(colour, shape, background, rng.choice([56, 64, 72])).save(HERE / "data" / name, optimize=True)
        pairs.append({"id": f"pair{i}", "images": [name], "messages": [
            {"role": "user", "content": "<image>Describe the image briefly."},
            {"role": "assistant", "content": f"A {colour} {shape} on a {background} background."}]})
    (HERE / "data" / "image_caption_pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))

    bench = HERE / "benchmark"
    (bench / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (colour, shape, background) in enumerate(rng.sample(combos, 12)):
        name = f"images/q{i:02d}.png"
        draw(colour, shape, background, 64).save(bench / name, optimize=True)
        if i % 2:
            rows.append({"id": f"q{i}", "image": name, "input": "What colour is the shape?", "label": colour,
                         "answer_type": "OPEN"})
        else:
            asked = rng.choice(SHAPES)
            rows.append({"id": f"q{i}", "image": name, "input": f"Is the shape a {asked}?",
                         "label": "yes" if asked == shape else "no", "answer_type": "CLOSED"})
    (bench / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
