"""The indicator rule: does a triplet's answer already read as a conclusion?

The answer of a kept triplet's task turn depends on it (METHOD §4, docs/compose.md):

1. the last piece of the informative answer holds an indicator -> the informative answer alone;
2. else the precise answer holds one -> informative + " " + precise;
3. else -> a chain-of-thought form (reasoning = informative, answer = precise).

Two tests decide "holds an indicator":

- ``legacy``: the paper's reference test, looseness included. Each indicator plus ONE space
  (``"so "``, ``"could be "``, ...) is searched as a plain substring, so ``"also "`` and
  ``"iso "`` hold ``"so "`` while ``"therefore,"`` and a text-final ``"so"`` do not.
- ``words``: whole words. An indicator matches where its words occur in order, separated by
  whitespace only, with no word character (letter, digit, ``_``, ``-``, apostrophe) right
  before or after: ``"therefore,"`` and a final ``"so"`` match, ``"also"``, ``"so-called"``,
  ``"answers"`` and ``"finally"`` do not.

Both search lower-cased text. The "last piece" is the same for both: the informative answer
stripped, lower-cased and split at every ``". "`` (period + space); the precise answer is only
lower-cased (not stripped, not split), as in the reference.
"""
from __future__ import annotations

import re
from typing import Callable, Literal

INDICATORS = ("could be", "so", "thus", "therefore", "final", "answer", "result")
#: The legacy test's needles: each indicator followed by exactly one space.
LEGACY_NEEDLES = tuple(indicator + " " for indicator in INDICATORS)

_WORD_CHAR = r"[\w'’-]"
_WORD_PATTERNS = tuple(
    re.compile(rf"(?<!{_WORD_CHAR})" + r"\s+".join(map(re.escape, indicator.split())) + rf"(?!{_WORD_CHAR})")
    for indicator in INDICATORS)

Branch = Literal["informative_only", "informative_plus_precise", "chain_of_thought"]
BRANCHES: tuple[Branch, ...] = ("informative_only", "informative_plus_precise", "chain_of_thought")


def legacy_match(text: str) -> bool:
    """True when one of ``LEGACY_NEEDLES`` occurs in ``text`` as a plain substring."""
    return any(needle in text for needle in LEGACY_NEEDLES)


def words_match(text: str) -> bool:
    """True when one of ``INDICATORS`` occurs in ``text`` as whole words (see the module docstring)."""
    return any(pattern.search(text) for pattern in _WORD_PATTERNS)


MATCHERS: dict[str, Callable[[str], bool]] = {"legacy": legacy_match, "words": words_match}


def last_piece(informative: str) -> str:
    """What the rule searches of the informative answer: its last ``". "``-separated piece,
    after stripping and lower-casing."""
    return informative.strip().lower().split(". ")[-1]


def branch(informative: str, precise: str, indicators: str = "legacy") -> Branch:
    """Which of the three responses a kept triplet gets, under the ``indicators`` test."""
    match = MATCHERS[indicators]
    if match(last_piece(informative)):
        return "informative_only"
    if match(precise.lower()):
        return "informative_plus_precise"
    return "chain_of_thought"
