"""The toy world's two image distributions, its scenes and their captions.

A scene is a handful of facts (shape kind, colour, count 1-3, size, quadrants, background) and
every text about it (captions, questions, answers) is written from those facts, so each answer
can be checked against the image it belongs to. The *general* distribution (seed data, the
starting model) and the *domain* one (post-training pairs, the benchmark) share no shape kind and
no background: domain shapes are new words for new outlines, on dark textured backgrounds
instead of plain light ones, as biomedical figures are new to a general MLLM. They share the
four colours, so that what a general model knows (and a synthesizer tuned on general data can
say) is partly right in the domain; with disjoint colours the tiny tuned synthesizer, which
names colours from the image rather than copying them from the caption, was always wrong
(docs/shapes.md).

No caption word contains "yes" or "no" as a substring, so the legacy closed-question scorer (whose
gate is a substring test) cannot be passed by an answer that merely repeats a caption.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from .draw import POSITIONS, draw_scene


@dataclass(frozen=True)
class Distribution:
    name: str
    kinds: tuple[str, ...]
    colours: tuple[str, ...]
    backgrounds: tuple[tuple[str, str], ...]  # (colour, texture)


GENERAL = Distribution(
    "general", kinds=("circle", "square", "triangle", "ring"), colours=("red", "green", "blue", "yellow"),
    backgrounds=(("white", "plain"), ("grey", "plain"), ("beige", "plain")))
DOMAIN = Distribution(
    "domain", kinds=("star", "hexagon", "cross", "diamond"), colours=GENERAL.colours,
    backgrounds=tuple((colour, texture) for colour in ("black", "navy", "brown", "olive")
                      for texture in ("striped", "dotted", "checkered", "speckled")))
DISTRIBUTIONS = {d.name: d for d in (GENERAL, DOMAIN)}

SIZES = ("small", "large")
#: Shape radius per size, as a share of the image side (a quadrant is half of it).
RADIUS = {"small": 0.14, "large": 0.22}
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
PLURALS = {"cross": "crosses"}


@dataclass(frozen=True)
class Scene:
    """The facts of one image."""

    kind: str
    colour: str
    count: int
    size: str
    cells: tuple[tuple[int, int], ...]
    bg_colour: str
    texture: str

    @property
    def position(self) -> str | None:
        """Where the shape is, for a single shape ("top left corner", "centre", ...)."""
        return POSITIONS[self.cells[0]][0] if self.count == 1 else None

    @property
    def background(self) -> str:
        """The background as captions name it: "white", "navy striped"."""
        return self.bg_colour if self.texture == "plain" else f"{self.bg_colour} {self.texture}"

    def facts(self) -> dict:
        return {"kind": self.kind, "colour": self.colour, "count": self.count, "size": self.size,
                "position": self.position, "background": self.background,
                "cells": [list(c) for c in self.cells]}


def plural(kind: str, count: int = 2) -> str:
    return kind if count == 1 else PLURALS.get(kind, kind + "s")


def sample_scene(dist: Distribution, rng: random.Random, **fixed) -> Scene:
    """A random scene of ``dist``; ``fixed`` pins facts (``kind=``, ``colour=``, ``count=``, ...)."""
    kind = fixed.get("kind") or rng.choice(dist.kinds)
    colour = fixed.get("colour") or rng.choice(dist.colours)
    count = fixed.get("count") or rng.choice((1, 2, 3))
    size = fixed.get("size") or rng.choice(SIZES)
    cells = tuple(sorted(rng.sample(sorted(POSITIONS), count)))
    bg_colour, texture = fixed.get("background") or rng.choice(dist.backgrounds)
    return Scene(kind, colour, count, size, cells, bg_colour, texture)


#: Scenes are drawn at this multiple of the image size, then box-filtered down (smooth edges).
SUPERSAMPLE = 2


def render(scene: Scene, image_size: int, rng: random.Random):
    from PIL import Image

    canvas = image_size * SUPERSAMPLE
    image = draw_scene(canvas, scene.kind, scene.colour, list(scene.cells), RADIUS[scene.size] * canvas,
                       scene.bg_colour, scene.texture, rng)
    return image.resize((image_size, image_size), Image.Resampling.BOX)


# -- captions -----------------------------------------------------------------------------------
def _phrases(scene: Scene) -> dict:
    n = scene.count
    article = "an" if scene.size[0] in "aeiou" else "a"
    many = f"{COUNT_WORDS[n]} {scene.size} {scene.colour} {plural(scene.kind, n)}"
    return {
        "shapes": f"{article} {scene.size} {scene.colour} {scene.kind}" if n == 1 else many,
        "bare": f"{scene.colour} {plural(scene.kind, n)}",
        "count": "a single" if n == 1 else COUNT_WORDS[n],
        "be": "is" if n == 1 else "are",
        "it": "it is" if n == 1 else "they are all",
        "kind_n": plural(scene.kind, n),
        "bg": scene.background,
        "a_bg": ("an " if scene.background[0] in "aeiou" else "a ") + scene.background,
        "size": scene.size,
        "colour": scene.colour,
        "where": " " + POSITIONS[scene.cells[0]][1] if n == 1 else "",
    }


#: Caption sentences (our own), filled from a scene's phrases; each states kind, colour, count,
#: size and background, and the position of a single shape.
CAPTIONS = (
    "{Shapes}{where} on {a_bg} background.",
    "The image shows {shapes}{where} against {a_bg} background.",
    "There {be} {count} {bare} here{where}; {it} {size}, and the background is {bg}.",
    "{A_bg} background with {shapes}{where}.",
    "This picture holds {shapes}{where}, drawn over {a_bg} background.",
    "{Count} {kind_n} in {colour}{where}, {size} in size, on {a_bg} background.",
    "We see {shapes}{where}. The background is {bg}.",
    "Drawn on {a_bg} background: {shapes}{where}.",
)


def caption(scene: Scene, template: int) -> str:
    phrases = _phrases(scene)
    phrases.update({key.capitalize(): value[:1].upper() + value[1:] for key, value in phrases.items()})
    return CAPTIONS[template % len(CAPTIONS)].format(**phrases)
