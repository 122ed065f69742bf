"""Auditing synthesized tasks against the toy world's truth: is the precise answer true?

The world knows every domain image's facts (``domain/facts.jsonl``), so a synthesizer can be
measured by itself, before any model is post-trained on its tasks. ``audit_triplets(world, path)``
classifies each triplet's instruction into a question family by matching the world's phrasings
(``questions.PHRASINGS``: an open question, a yes/no question with its asked word, or a choice
question with its options; anything else is ``unrecognized``), then checks the precise answer
against the image's facts:

* ``colour`` / ``kind`` / ``count`` / ``size`` / ``background`` / ``position``: the answer is the
  fact's word (a kind also in the plural; a count also as a digit);
* ``has_kind`` / ``has_colour``: the answer's first yes/no word says whether the asked word is
  the fact;
* ``choose_kind`` / ``choose_colour``: the answer's letter (or, without one, its text) names the
  option that is the fact.

A one-line question in other words is classified by its keywords ("how many", "colour",
"object" / "shape"; counted as ``loose``), so another synthesizer's tasks (the ``rules`` frames)
are checked too. An unrecognized instruction counts as not true. The report also says how diverse the tasks are
(families covered, distinct instructions) and how often a yes/no task answers yes.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from .questions import CHOICE_FAMILIES, CHOICE_SUFFIX, CLOSED_FAMILIES, LETTERS, PHRASINGS
from .scenes import COUNT_WORDS, plural

UNRECOGNIZED = "unrecognized"
_WORD = re.compile(r"[a-z0-9]+")
_OPTION = re.compile(r"^\s*([A-D])\s*[.):]\s*(.+?)\s*$")


def _norm(text: str) -> str:
    return " ".join(text.replace("<image>", " ").split())


def _patterns() -> list[tuple[str, re.Pattern]]:
    out = []
    for family, phrasings in PHRASINGS.items():
        for text in phrasings:
            pattern = re.escape(text).replace(re.escape("{x}"), r"(?:an? )?(?P<x>[\w' -]+?)")
            out.append((family, re.compile(f"^{pattern}$", re.IGNORECASE)))
    return out


PATTERNS = _patterns()
#: Open questions in other words, by keyword (checked after the world's phrasings; counted as
#: ``loose`` in the audit): what another synthesizer, such as ``rules``, asks.
LOOSE = (("count", re.compile(r"\bhow many\b|\bnumber of\b|\bcount\b", re.I)),
         ("colour", re.compile(r"\bcolou?rs?\b", re.I)),
         ("kind", re.compile(r"\b(?:object|shape|kind)s?\b", re.I)))


def classify(instruction: str) -> tuple[str, dict]:
    """``(family, details)`` of an instruction: ``details`` holds the asked word ``x`` of a yes/no
    question or the ``options`` of a choice question; ``("unrecognized", {})`` if no phrasing matches."""
    lines = [line.strip() for line in instruction.replace("<image>", "\n").splitlines() if line.strip()]
    if not lines:
        return UNRECOGNIZED, {}
    first = _norm(lines[0])
    for family, pattern in PATTERNS:
        match = pattern.match(first)
        if not match:
            continue
        if family in CHOICE_FAMILIES:
            options = {}
            for line in lines[1:]:
                parsed = _OPTION.match(line)
                if parsed:
                    options[parsed.group(1)] = parsed.group(2).lower()
            if sorted(options) != list(LETTERS) or lines[-1] != CHOICE_SUFFIX:
                continue
            return family, {"options": options}
        if len(lines) > 1:
            continue
        return family, {"x": match.group("x").lower()} if "x" in match.groupdict() else {}
    if len(lines) == 1:  # another synthesizer's wording of an open question (the rules' frames)
        for family, pattern in LOOSE:
            if pattern.search(first):
                return family, {"loose": True}
    return UNRECOGNIZED, {}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _is_kind(word: str, kind: str) -> bool:
    return word in (kind, plural(kind))


def is_true(family: str, details: dict, precise: str, facts: dict) -> bool:
    """Whether ``precise`` is the true answer of a ``family`` question about an image with ``facts``."""
    words = _words(precise)
    answer = " ".join(words)
    if family == "colour":
        return answer == facts["colour"]
    if family == "kind":
        return _is_kind(answer, facts["kind"])
    if family == "count":
        return answer in (COUNT_WORDS[facts["count"]], str(facts["count"]))
    if family in ("size", "background", "position"):
        return answer == str(facts[family] or "").lower()
    if family in CLOSED_FAMILIES:
        said = next((w for w in words if w in ("yes", "no")), None)
        asked = details["x"]
        truth = _is_kind(asked, facts["kind"]) if family == "has_kind" else asked == facts["colour"]
        return said is not None and (said == "yes") == truth
    if family in CHOICE_FAMILIES:
        options = details["options"]
        letter = next((m.group(1) for m in [re.match(r"^\(?([A-D])\b", precise.strip())] if m), None)
        chosen = options.get(letter) if letter else next((o for o in options.values() if o == answer), None)
        fact = facts["kind"] if family == "choose_kind" else facts["colour"]
        return chosen is not None and (_is_kind(chosen, fact) if family == "choose_kind" else chosen == fact)
    return False


def audit_triplets(world, triplets: str | Path | list) -> dict:
    """The audit of a ``triplets.jsonl`` (or a list of triplet dicts) against ``world``'s domain
    facts: ``triplets``, ``pairs``, ``true``, ``fact_accuracy`` (x100, of the triplets),
    ``families`` (per family: ``n``, ``true``, ``accuracy``, and ``yes`` for yes/no families),
    ``families_covered``, ``distinct_instructions``, ``loose`` (classified by keywords), ``unrecognized``."""
    facts = {row["id"]: row for row in map(json.loads, Path(world.facts).read_text().splitlines())}
    if isinstance(triplets, (str, Path)):
        path = Path(triplets)
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    else:
        rows = list(triplets)
    per: dict[str, Counter] = {}
    instructions = set()
    loose = 0
    for row in rows:
        family, details = classify(row["instruction"])
        loose += bool(details.get("loose"))
        instructions.add(_norm(row["instruction"]).lower())
        counts = per.setdefault(family, Counter())
        counts["n"] += 1
        if row["id"] in facts and family != UNRECOGNIZED and is_true(family, details, row["precise"], facts[row["id"]]):
            counts["true"] += 1
        if family in CLOSED_FAMILIES and "yes" in _words(row["precise"]):
            counts["yes"] += 1
    true = sum(c["true"] for c in per.values())
    families = {}
    for family in sorted(per):
        c = per[family]
        families[family] = {"n": c["n"], "true": c["true"], "accuracy": round(100 * c["true"] / c["n"], 1)}
        if family in CLOSED_FAMILIES:
            families[family]["yes"] = c["yes"]
    return {"pairs": len(facts), "triplets": len(rows), "true": true,
            "fact_accuracy": round(100 * true / len(rows), 1) if rows else 0.0,
            "families": families, "families_covered": len([f for f in per if f != UNRECOGNIZED]),
            "distinct_instructions": len(instructions), "loose": loose,
            "unrecognized": per.get(UNRECOGNIZED, Counter())["n"]}


def summary(audit: dict) -> str:
    """One line: accuracy, coverage and diversity."""
    fams = ", ".join(f"{f} {v['true']}/{v['n']}" for f, v in audit["families"].items())
    return (f"{audit['fact_accuracy']:.1f}% true ({audit['true']}/{audit['triplets']} triplets for "
            f"{audit['pairs']} pairs; {audit['families_covered']} families, "
            f"{audit['distinct_instructions']} distinct instructions): {fams}")


__all__ = ["UNRECOGNIZED", "audit_triplets", "classify", "is_true", "summary"]
