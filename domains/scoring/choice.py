"""Parse the chosen option out of a free-text answer.

PMC-VQA uses the letters A-D; Food101 uses the numbers 0..100 with the class names as option texts.
Both scorers use these legacy rules, because they are a reasonable reading of free text:
1. strip , . ! ? ; : ' from both ends, one kind at a time in that order (whitespace is NOT
   stripped), then pad with one space on each side;
2. candidates are the "(X)" forms; if none, " X " as a separate token; if none and the padded text
   is longer than 5 characters, the option texts, found case-insensitively;
3. several candidates: the one whose last occurrence starts last wins, equal starts go to the
   earlier option; no candidate: a random option from a generator seeded per sample (see
   `sample_rng`), so the result does not depend on the order records are processed in.
"""
from __future__ import annotations

import random
from collections.abc import Mapping

_STRIP_ORDER = (",", ".", "!", "?", ";", ":", "'")


def sample_rng(seed: int, record: Mapping, index: int) -> random.Random:
    """A generator from (seed, record id), or (seed, index) when the record has no id."""
    key = f"id={record['id']}" if record.get("id") is not None else f"index={index}"
    return random.Random(f"{seed}|{key}")  # str seeds hash with SHA-512: stable across runs


def parse_choice(response: str, options: Mapping[str, str], rng: random.Random) -> str:
    """Return the option key (letter or number string) the response picks."""
    for char in _STRIP_ORDER:
        response = response.strip(char)
    padded = f" {response} "
    starts = {key: padded.rfind(f"({key})") for key in options if f"({key})" in padded}
    if not starts:
        starts = {key: padded.rfind(f" {key} ") for key in options if f" {key} " in padded}
    if not starts and len(padded) > 5:
        lowered = padded.lower()
        starts = {key: lowered.rfind(text.lower()) for key, text in options.items()
                  if text.lower() in lowered}
    if not starts:
        return rng.choice(list(options))
    return max(starts, key=starts.__getitem__)  # max keeps the first (earliest option) of a tie
