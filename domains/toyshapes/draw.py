"""Drawing toy scenes with PIL only: shapes of a few kinds on plain or textured backgrounds.

Every pixel follows from the scene and a ``random.Random`` seeded by the caller, so the same
scene and seed give the same PNG bytes on any machine (PNG encoding of a given image is stable).
"""
from __future__ import annotations

import math
import random

#: RGB of every colour word the world uses (shapes and backgrounds).
RGB = {
    "red": (215, 35, 35), "green": (40, 160, 60), "blue": (40, 70, 215), "yellow": (235, 205, 25),
    "purple": (130, 40, 175), "orange": (245, 130, 20), "pink": (240, 120, 185), "cyan": (30, 200, 210),
    "white": (250, 250, 250), "grey": (170, 170, 170), "beige": (225, 210, 175),
    "black": (20, 20, 20), "navy": (25, 30, 80), "brown": (95, 60, 35), "olive": (90, 95, 40),
}

#: Where shapes sit: the four quadrants of the image, by (row, column), each with its name and
#: the phrase captions use.
POSITIONS = {
    (0, 0): ("top left", "in the top left corner"), (0, 1): ("top right", "in the top right corner"),
    (1, 0): ("bottom left", "in the bottom left corner"), (1, 1): ("bottom right", "in the bottom right corner"),
}


def _polygon(cx: float, cy: float, r: float, kind: str, turn: float) -> list[tuple[float, float]]:
    def ring(n: int, radius: float, offset: float) -> list[tuple[float, float]]:
        return [(cx + radius * math.cos(offset + 2 * math.pi * k / n),
                 cy + radius * math.sin(offset + 2 * math.pi * k / n)) for k in range(n)]

    if kind == "triangle":
        return ring(3, r, -math.pi / 2 + turn)
    if kind == "square":
        return ring(4, r, math.pi / 4 + turn)
    if kind == "diamond":
        return [(cx, cy - r), (cx + 0.62 * r, cy), (cx, cy + r), (cx - 0.62 * r, cy)]
    if kind == "hexagon":
        return ring(6, r, turn)
    if kind == "star":
        outer, inner = ring(5, r, -math.pi / 2 + turn), ring(5, 0.45 * r, -math.pi / 2 + math.pi / 5 + turn)
        return [p for pair in zip(outer, inner) for p in pair]
    if kind == "cross":
        a, b = r, 0.36 * r
        return [(cx - b, cy - a), (cx + b, cy - a), (cx + b, cy - b), (cx + a, cy - b), (cx + a, cy + b),
                (cx + b, cy + b), (cx + b, cy + a), (cx - b, cy + a), (cx - b, cy + b), (cx - a, cy + b),
                (cx - a, cy - b), (cx - b, cy - b)]
    raise ValueError(f"unknown shape kind {kind!r}")


def background(size: int, colour: str, texture: str, rng: random.Random):
    """A ``size`` x ``size`` background: ``plain``, or ``striped`` / ``dotted`` / ``checkered`` /
    ``speckled`` in its colour with a lighter pattern."""
    from PIL import Image, ImageDraw

    base = RGB[colour]
    light = tuple(min(255, c + 70) for c in base)
    image = Image.new("RGB", (size, size), base)
    draw = ImageDraw.Draw(image)
    if texture == "plain":
        return image
    if texture == "striped":
        step, phase = rng.choice((8, 10, 12)), rng.randrange(8)
        for x in range(-size, size, step):
            draw.line([(x + phase, 0), (x + phase + size, size)], fill=light, width=2)
    elif texture == "dotted":
        step = rng.choice((9, 11))
        for y in range(rng.randrange(step), size, step):
            for x in range(rng.randrange(step), size, step):
                draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=light)
    elif texture == "checkered":
        step = rng.choice((14, 16))
        for y in range(0, size, step):
            for x in range(0, size, step):
                if (x // step + y // step) % 2:
                    draw.rectangle([x, y, x + step - 1, y + step - 1], fill=light)
    elif texture == "speckled":
        pixels = image.load()
        for _ in range(size * size // 6):
            pixels[rng.randrange(size), rng.randrange(size)] = light
    else:
        raise ValueError(f"unknown texture {texture!r}")
    return image


def draw_scene(size: int, kind: str, colour: str, cells: list[tuple[int, int]], radius: float,
               bg_colour: str, texture: str, rng: random.Random):
    """The scene's image: one shape of ``kind`` and ``colour`` in each quadrant of ``cells``, with
    a small jitter and turn."""
    from PIL import ImageDraw

    image = background(size, bg_colour, texture, rng)
    draw = ImageDraw.Draw(image)
    cell = size / 2
    for row, col in cells:
        slack = max(0.0, cell / 2 - radius - 1)
        cx = (col + 0.5) * cell + rng.uniform(-slack, slack)
        cy = (row + 0.5) * cell + rng.uniform(-slack, slack)
        turn = rng.uniform(-0.15, 0.15)
        if kind == "circle":
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=RGB[colour])
        elif kind == "ring":
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], outline=RGB[colour],
                         width=max(2, round(0.38 * radius)))
        else:
            draw.polygon(_polygon(cx, cy, radius, kind, turn), fill=RGB[colour])
    return image
