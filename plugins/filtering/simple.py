"""Model-free filters for ablations: ``lexical`` (word overlap) and ``none`` (keep everything).

``lexical`` rule, exactly:

1. words of a text: lower-case it, then take every maximal run of letters and digits (Unicode
   letters count; everything else, punctuation, apostrophes, hyphens and ``_`` included,
   separates words): ``"Don't-stop, 3D!"`` -> ``don``, ``t``, ``stop``, ``3d``;
2. content words of the precise answer: its words minus ``STOPWORDS`` (a small built-in list of
   English function words); when that leaves nothing (``"It is"``) its words are used as they are;
3. verdict ``yes`` when the precise answer has at least one word and every one of its content
   words is among the informative answer's words (whole words: ``cat`` is not found in
   ``cats``; numerals and number words differ: ``9`` is not ``nine``), else ``no`` (``raw``
   then lists the missing words). It never says ``open``.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

from pydantic import ConfigDict, Field

from adamllm.records import TaskTriplet, Verdict

from .gold import GoldOption, GoldSummary

STOPWORDS = frozenset(
    "a an the this that these those it its they them their there here i you we he she his her "
    "and or but nor so yet if of on in at to by for from with without into onto over under about "
    "is are was were be been being am has have had do does did can could will would should may might "
    "as than then also just very not s t".split())
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Rule step 1: the lower-cased runs of letters and digits."""
    return _WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    """Rule step 2: the words that are not stopwords, or all words when every one is a stopword."""
    all_words = words(text)
    return [w for w in all_words if w not in STOPWORDS] or all_words


def lexical_verdict(precise: str, informative: str) -> tuple[str, list[str]]:
    """Rule step 3: (``yes`` or ``no``, the precise answer's content words missing from the informative one)."""
    needed = list(dict.fromkeys(content_words(precise)))
    if not needed:
        return "no", []
    present = set(words(informative))
    missing = [w for w in needed if w not in present]
    return ("no" if missing else "yes"), missing


class LexicalConfig(GoldOption):
    """Options of the ``lexical`` filter."""

    model_config = ConfigDict(extra="forbid")
    batch_size: int = Field(256, ge=1, description="Triplets per judge call.")


class LexicalFilter(GoldSummary):
    """``yes`` when the precise answer's content words all appear in the informative answer (module docstring)."""

    def __init__(self, config: LexicalConfig) -> None:
        self.config = config
        self.batch_size = config.batch_size
        self._load_gold(config.gold)

    def judge(self, triplets: Sequence[TaskTriplet], ctx: Any) -> list[Verdict]:
        out = []
        for t in triplets:
            verdict, missing = lexical_verdict(t.precise, t.informative)
            out.append(Verdict(id=t.id, verdict=verdict, raw=("missing: " + " ".join(missing)) if missing else ""))
        return out


class KeepAllConfig(GoldOption):
    """Options of the ``none`` filter."""

    model_config = ConfigDict(extra="forbid")
    batch_size: int = Field(256, ge=1, description="Triplets per judge call.")


class KeepAllFilter(GoldSummary):
    """Every triplet ``yes``: the no-filter ablation (the paper's "precise only" / "informative only"
    rows skip the consistency check; with ``gold`` it shows how much a filter would remove)."""

    def __init__(self, config: KeepAllConfig) -> None:
        self.config = config
        self.batch_size = config.batch_size
        self._load_gold(config.gold)

    def judge(self, triplets: Sequence[TaskTriplet], ctx: Any) -> list[Verdict]:
        return [Verdict(id=t.id, verdict="yes") for t in triplets]
