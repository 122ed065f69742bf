"""Truth-derived task triplets for the domain pairs: what a perfect synthesizer would write.

Each pair's image has known facts (``domain/facts.jsonl``), so a question about it, with a precise
and an informative answer, can be written without any model. These triplets are the upper bound
of synthesis quality in the toy world: experiments compare the ``rules`` synthesizer and the
tuned one against them, and a run can feed them to ``filter``/``compose`` (``data.filter``).
The family of each pair's question is drawn per pair from (seed, pair id), so it does not depend
on the other pairs.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from .questions import ask
from .scenes import DOMAIN

#: Question families a truth triplet is drawn from (the benchmark's, and a few it does not ask).
TRUTH_FAMILIES = ("colour", "kind", "count", "has_kind", "has_colour", "choose_kind", "choose_colour",
                  "size", "background")


def _rng(seed: int, pair_id: str) -> random.Random:
    digest = hashlib.sha256(f"toyshapes-truth:{seed}:{pair_id}".encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def truth_triplets(world, seed: int = 0) -> list[dict]:
    """One ``TaskTriplet`` record (a dict) per domain pair: ``id``, ``image`` (absolute),
    ``instruction``, ``precise``, ``informative``, and the ``family`` asked."""
    from .world import read_facts

    scenes = read_facts(world)
    folder = Path(world.pairs).parent
    triplets = []
    for line in Path(world.facts).read_text().splitlines():
        row = json.loads(line)
        rng = _rng(seed, row["id"])
        question = ask(rng.choice(TRUTH_FAMILIES), scenes[row["id"]], DOMAIN, rng)
        triplets.append({"id": row["id"], "image": str((folder / row["image"]).resolve()),
                         "instruction": question.text, "precise": question.reply,
                         "informative": question.informative, "family": question.family})
    return triplets


def write_truth_triplets(world, path: str | Path, seed: int = 0) -> Path:
    """The truth triplets as ``triplets.jsonl`` (the synthesize stage's layout)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in truth_triplets(world, seed)))
    return path
