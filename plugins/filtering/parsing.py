"""Turning the judge's generated words into a verdict label, two ways.

``legacy`` (default): the generated text, whitespace-stripped and lower-cased, must equal
``yes``, ``no`` or ``open`` exactly, as in the paper: ``"Yes."`` or ``"Yes,"`` (a 2-token
generation often ends in punctuation) is none of them, so it becomes ``other`` and the triplet
is dropped. It is the default because it reproduces the paper's keep rates: a looser parse keeps
triplets the paper dropped, which changes the training mix the paper's numbers came from.

``normalized``: lower-cased, every character that is not a letter or digit becomes a space, and
the first word is the label: ``"Yes."`` -> yes, ``"open-ended"`` -> open, ``"Yesterday"`` ->
other (the first word must be the label itself, not start with it).

Any text that is none of the labels under the chosen parsing (junk, the empty string) is ``other``.
"""
from __future__ import annotations

import re
from typing import Literal

LABELS = ("yes", "no", "open")
OTHER = "other"
PARSINGS = ("legacy", "normalized")
Parsing = Literal["legacy", "normalized"]

_NOT_A_WORD_CHARACTER = re.compile(r"[\W_]+")


def parse_legacy(text: str) -> str:
    """The label when the stripped, lower-cased text is exactly one, else ``other``."""
    label = text.strip().lower()
    return label if label in LABELS else OTHER


def parse_normalized(text: str) -> str:
    """The first word of the text with punctuation removed and lower-cased, when it is a label."""
    words = _NOT_A_WORD_CHARACTER.sub(" ", text.lower()).split()
    return words[0] if words and words[0] in LABELS else OTHER


PARSERS = {"legacy": parse_legacy, "normalized": parse_normalized}


def parse_verdict(text: str, parsing: Parsing = "legacy") -> str:
    """``yes`` / ``no`` / ``open`` / ``other`` for the judge's text under ``parsing``."""
    try:
        return PARSERS[parsing](text)
    except KeyError:
        raise ValueError(f"unknown parsing {parsing!r}; expected one of {', '.join(PARSINGS)}") from None


def parsings_differ(text: str) -> bool:
    """Whether ``legacy`` and ``normalized`` give this text different labels."""
    return parse_legacy(text) != parse_normalized(text)
