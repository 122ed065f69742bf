"""Questions about a scene, with their precise and informative answers (our own wording).

One question *family* per fact: ``colour``, ``kind``, ``count``, ``size``, ``position`` (single
shapes), ``background``, the closed ``has_kind`` / ``has_colour`` (yes or no) and the
multiple-choice ``choose_kind`` / ``choose_colour``. Each family has a few phrasings; which one,
and the distractor of a closed or the option order of a choice question, come from the caller's
seeded ``random.Random``. The same families serve the general seed tasks and the domain
benchmark, with each distribution's own words, so what the general model learned (how to answer
a question) transfers and what it did not see (the domain's shapes and colours) must be learned
in post-training.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

from .scenes import COUNT_WORDS, Distribution, Scene, plural

LETTERS = ("A", "B", "C", "D")

#: Phrasings per family; ``{x}`` is the asked-about kind or colour of a closed question.
PHRASINGS = {
    "colour": ("What colour is the shape?", "What colour are the shapes in the image?",
               "Which colour do the shapes have?"),
    "kind": ("What kind of shape is shown?", "Which shape appears in the image?", "What shape is drawn here?"),
    "count": ("How many shapes are there?", "How many shapes can you see in the image?",
              "Count the shapes in the picture."),
    "size": ("Are the shapes small or large?", "What size are the shapes, small or large?"),
    "position": ("Where is the shape in the image?", "In which part of the picture is the shape?"),
    "background": ("What does the background look like?", "Describe the background in a few words."),
    "has_kind": ("Is there a {x} in the image?", "Does the picture contain a {x}?"),
    "has_colour": ("Are the shapes {x}?", "Is the shape in the image {x}?"),
    "choose_kind": ("Which shape is in the image?",),
    "choose_colour": ("What colour are the shapes?",),
}
OPEN_FAMILIES = ("colour", "kind", "count", "size", "position", "background")
CLOSED_FAMILIES = ("has_kind", "has_colour")
CHOICE_FAMILIES = ("choose_kind", "choose_colour")
CHOICE_SUFFIX = "Answer with the option's letter."


@dataclass(frozen=True)
class Question:
    family: str
    template: int  # index into PHRASINGS[family]
    text: str
    answer: str  # the precise answer, as a benchmark label (a letter for choice questions)
    informative: str
    options: Optional[tuple[str, ...]] = None  # A..D option texts of a choice question

    @property
    def reply(self) -> str:
        """The precise answer as a model should say it: a choice question's letter with its
        option ("B. star"), which a choice scorer also reads by the option's text."""
        if self.options is None:
            return self.answer
        return f"{self.answer}. {self.options[LETTERS.index(self.answer)]}"

    @property
    def answer_type(self) -> str:
        return "CLOSED" if self.family in CLOSED_FAMILIES else "OPEN"


def _count_answer(scene: Scene) -> str:
    return COUNT_WORDS[scene.count]


def _informative(family: str, scene: Scene, answer: str, asked: str | None) -> str:
    """A longer answer: what is seen, then the conclusion ("..., so the answer is X."). Short on
    purpose: a tiny synthesizer has to learn to write it. The fact comes first, so a reader cut
    short still gets it, and the composer's indicator rule keeps it whole (its last sentence
    holds "so ")."""
    one = scene.count == 1
    they, are = ("the shape", "is") if one else ("the shapes", "are")
    kind_n = plural(scene.kind, scene.count)
    if family == "colour":
        return f"{'The shape is' if one else 'Each shape is'} filled with {scene.colour}, so the answer is {scene.colour}."
    if family == "kind":
        return f"{'The shape' if one else 'Each shape'} has the outline of a {scene.kind}, so the answer is {scene.kind}."
    if family == "count":
        return f"There {'is' if one else 'are'} {answer} {kind_n} in the picture, so the answer is {answer}."
    if family == "size":
        return f"The {kind_n} take up {'little' if scene.size == 'small' else 'much'} of the picture, " \
               f"so the answer is {scene.size}."
    if family == "position":
        return f"The {scene.kind} is in the {answer} of the picture, so the answer is {answer}."
    if family == "background":
        return f"Behind the {kind_n} the picture is {answer}, so the answer is {answer}."
    if family in CLOSED_FAMILIES:
        fact = scene.kind if family == "has_kind" else scene.colour
        seen = (f"a {fact}" if one else plural(fact)) if family == "has_kind" else fact
        if answer == "yes":
            return f"Yes: {they} {are} {seen}, so the answer is yes."
        shown = (f"a {asked}" if one else plural(asked)) if family == "has_kind" else asked
        return f"No: {they} {are} {seen}, not {shown}, so the answer is no."
    raise ValueError(f"no informative answer for family {family!r}")


def ask(family: str, scene: Scene, dist: Distribution, rng: random.Random, *,
        template: int | None = None, truth: bool | None = None, letter: int | None = None) -> Question:
    """One question of ``family`` about ``scene``. ``template`` picks the phrasing (default: a
    random one); ``truth`` decides a closed question's answer (default: a fair coin); ``letter``
    puts a choice question's right option at that index (default: a shuffled order)."""
    phrasings = PHRASINGS[family]
    index = rng.randrange(len(phrasings)) if template is None else template % len(phrasings)
    text = phrasings[index]
    if family in OPEN_FAMILIES:
        if family == "position" and scene.count != 1:
            raise ValueError("a position question needs a single shape")
        answer = {"colour": scene.colour, "kind": scene.kind, "count": _count_answer(scene), "size": scene.size,
                  "position": scene.position, "background": scene.background}[family]
        return Question(family, index, text, answer, _informative(family, scene, answer, None))
    if family in CLOSED_FAMILIES:
        pool, fact = (dist.kinds, scene.kind) if family == "has_kind" else (dist.colours, scene.colour)
        truth = rng.random() < 0.5 if truth is None else truth
        asked = fact if truth else rng.choice([x for x in pool if x != fact])
        answer = "yes" if truth else "no"
        return Question(family, index, text.format(x=asked), answer, _informative(family, scene, answer, asked))
    if family in CHOICE_FAMILIES:
        pool, fact = (dist.kinds, scene.kind) if family == "choose_kind" else (dist.colours, scene.colour)
        options = list(pool)
        rng.shuffle(options)
        if letter is not None:
            options.remove(fact)
            options.insert(letter % len(LETTERS), fact)
        lines = "\n".join(f"{letter}. {option}" for letter, option in zip(LETTERS, options))
        letter = LETTERS[options.index(fact)]
        one = scene.count == 1
        seen = (f"a {fact}" if one else plural(fact)) if family == "choose_kind" else fact
        return Question(family, index, f"{text}\n{lines}\n{CHOICE_SUFFIX}", letter,
                        f"{'The shape is' if one else 'The shapes are'} {seen}, which is option {letter}, "
                        f"so the answer is {letter}.", options=tuple(options))
    raise ValueError(f"unknown question family {family!r}")
