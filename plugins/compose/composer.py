"""The ``adamllm`` composer: one training example per image, caption turn + task turn.

For each image-caption pair, in source order (METHOD §4, docs/compose.md):

- no triplet was synthesized -> the image is dropped;
- the filter's verdict is not ``yes`` (``no``, ``open``, ``other``, or no verdict) -> the caption
  turn only;
- ``yes`` -> the caption turn and the task turn, in a seeded order, in one conversation.

The task turn's response follows the indicator rule (``adamllm.plugins.compose.indicators``) and
its wording a template drawn from adamllm's pools (``adamllm.plugins.compose.templates``). The
``<image>`` placeholder opens the first user turn, whichever turn comes first.

Every random choice (turn order, inverted or forward template, which template, a default caption
instruction) is its own draw from a hash of (seed, pair id, what is drawn), so a record's
choices depend on nothing else: not on the other records, their order, or the other options.
Same inputs and seed -> the same mix, byte for byte; another seed -> other choices.

Options switch to the two-stage recipe and the paper's ablations, one switch each (see
``ComposerConfig``); combinations that contradict each other are config errors. ``formats`` picks
the forms the compose stage writes the mix in (``adamllm.mix_writers``: LLaMA-Factory, TRL,
``datasets``); the records the composer yields name the pairs' images, which the stage places in
``OUT/compose/images/``.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Iterator, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adamllm.backbone import IMAGE_PLACEHOLDER
from adamllm.mix_writers import DEFAULT_FORMATS, MixFormat
from adamllm.records import ImageCaptionPair, TaskTriplet, TrainingExample, Verdict

from .indicators import branch
from .templates import CAPTION_INSTRUCTIONS, POOLS

Turn = tuple[str, str]  # (user text, assistant text), without the image placeholder


class ComposerConfig(BaseModel):
    """Options of the ``adamllm`` composer; the defaults compose the paper's single-stage mix."""

    model_config = ConfigDict(extra="forbid")

    indicators: Literal["legacy", "words"] = Field(
        "legacy", description="Indicator test: 'legacy' = the reference's loose substring test (paper), "
                              "'words' = whole-word matches.")
    task_answer: Literal["rule", "precise_only", "informative_only"] = Field(
        "rule", description="'rule': kept triplets only, response by the indicator rule (paper). Ablations "
                            "without the filter (every triplet kept): 'precise_only', 'informative_only'.")
    caption_turn: bool = Field(True, description="false: no caption turn (ablation 'no caption task').")
    synthetic_task: bool = Field(True, description="false: caption turns only, for every pair (ablation "
                                                   "'no synthetic task').")
    two_stage: bool = Field(False, description="Caption examples (stage 1) and task examples (stage 2) apart, "
                                               "for the sft trainer's two_stage: true.")
    inverted_share: float = Field(0.1, ge=0.0, le=1.0, description="Share of task turns drawn from the "
                                                                   "inverted pools (write the question).")
    turn_order: Literal["seeded", "caption_first", "task_first"] = Field(
        "seeded", description="Order of the caption and task turns in one conversation.")
    seed: Optional[int] = Field(None, description="Seed of every choice (default: the run's seed).")
    formats: list[MixFormat] = Field(
        default_factory=lambda: list(DEFAULT_FORMATS),
        description="Forms of the mix the compose stage writes beside mix.jsonl (always written, read by the "
                    "sft trainer): 'llamafactory' (dataset_info.json for LLaMA-Factory's sharegpt loader), 'trl' "
                    "(mix_trl.jsonl, TRL's vision conversational format, no <image> placeholder), 'datasets' "
                    "(dataset/, a datasets save_to_disk folder). Images: OUT/compose/images/, paths relative "
                    "to the mix's folder.")

    @model_validator(mode="after")
    def _consistent(self) -> "ComposerConfig":
        if not self.caption_turn and not self.synthetic_task:
            raise ValueError("caption_turn: false with synthetic_task: false leaves nothing to train on")
        if self.two_stage and not self.caption_turn:
            raise ValueError("two_stage needs the caption turn (stage 1 trains on captions); "
                             "drop caption_turn: false")
        if self.two_stage and not self.synthetic_task:
            raise ValueError("two_stage needs the synthetic task (stage 2 trains on tasks); "
                             "drop synthetic_task: false")
        if not self.synthetic_task:
            unused = [name for name in ("indicators", "task_answer", "inverted_share")
                      if getattr(self, name) != type(self).model_fields[name].default]
            if unused:
                raise ValueError(f"{', '.join(unused)} set with synthetic_task: false, which composes no task turn")
        if self.task_answer != "rule" and self.indicators != "legacy":
            raise ValueError(f"indicators: {self.indicators} has no effect with task_answer: {self.task_answer} "
                             f"(the indicator rule decides only under task_answer: rule)")
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"formats lists a format twice: {self.formats}")
        if self.turn_order != "seeded" and (self.two_stage or not self.caption_turn or not self.synthetic_task):
            raise ValueError(f"turn_order: {self.turn_order} needs both turns in one conversation "
                             f"(not with two_stage, caption_turn: false or synthetic_task: false)")
        return self


def draw(seed: int, record_id: str, what: str) -> float:
    """A number in [0, 1) fixed by (seed, record id, what): sha256's first 8 bytes over 2**64."""
    digest = hashlib.sha256(f"adamllm-compose/{seed}/{record_id}/{what}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def pick(seed: int, record_id: str, what: str, n: int) -> int:
    return int(draw(seed, record_id, what) * n)


@dataclass(frozen=True)
class TaskTurn:
    """A composed task turn and how it was made (for stats and tests; not written to the mix)."""

    user: str
    assistant: str
    answer_kind: str        # an indicator-rule branch, or precise_answer / informative_answer
    pool: str               # qa | cot
    direction: str          # forward | inverted
    template: int           # index in the pool


class AdamllmComposer:
    """See the module docstring. ``stats`` (after ``compose`` ran): counts of every branch."""

    def __init__(self, config: ComposerConfig | None = None) -> None:
        self.config = config if config is not None else ComposerConfig()
        self._counts: Counter = Counter()
        self.stats: dict = self._summary()

    def _seed(self, ctx) -> int:
        if self.config.seed is not None:
            return self.config.seed
        return int(getattr(getattr(ctx, "config", None), "seed", 0) or 0)

    # -- turns ---------------------------------------------------------------------------
    def _clean(self, text: str) -> str:
        """The text without image placeholders (only the composer places them; each removal is counted)."""
        found = text.count(IMAGE_PLACEHOLDER)
        if found:
            self._counts["placeholders_removed"] += found
            text = text.replace(IMAGE_PLACEHOLDER, "")
        return text.strip()

    def caption_turn(self, pair: ImageCaptionPair, seed: int) -> Turn:
        instruction = self._clean(pair.instruction or "")
        if not instruction:
            instruction = CAPTION_INSTRUCTIONS[pick(seed, pair.id, "caption_instruction", len(CAPTION_INSTRUCTIONS))]
            self._counts["default_caption_instruction"] += 1
        return instruction, self._clean(pair.caption)

    def task_turn(self, triplet: TaskTriplet, seed: int) -> TaskTurn:
        """The triplet's task turn: the response (by the rule or the ablation) in a drawn template."""
        question = self._clean(triplet.instruction)
        informative, precise = self._clean(triplet.informative), self._clean(triplet.precise)
        mode = self.config.task_answer
        fields = {"question": question}
        if mode == "rule":
            # the rule reads the triplet's own texts (the reference does not strip the precise answer)
            answer_kind = branch(triplet.informative, triplet.precise, self.config.indicators)
            if answer_kind == "chain_of_thought":
                pool, fields = "cot", {**fields, "reasoning": informative, "answer": precise}
            else:
                answer = informative if answer_kind == "informative_only" else informative + " " + precise
                pool, fields = "qa", {**fields, "answer": answer}
        else:
            answer_kind = "precise_answer" if mode == "precise_only" else "informative_answer"
            pool, fields = "qa", {**fields, "answer": precise if mode == "precise_only" else informative}
        direction = "inverted" if draw(seed, triplet.id, "inverted") < self.config.inverted_share else "forward"
        templates = POOLS[pool][direction]
        index = pick(seed, triplet.id, f"template/{pool}/{direction}", len(templates))
        user, assistant = templates[index].fill(**fields)
        return TaskTurn(user, assistant, answer_kind, pool, direction, index)

    # -- examples ------------------------------------------------------------------------
    @staticmethod
    def _example(example_id: str, image: str, turns: list[Turn], stage: Optional[int] = None) -> TrainingExample:
        messages = []
        for k, (user, assistant) in enumerate(turns):
            messages += [{"role": "user", "content": (IMAGE_PLACEHOLDER if k == 0 else "") + user},
                         {"role": "assistant", "content": assistant}]
        return TrainingExample(id=example_id, messages=messages, images=[image], stage=stage)

    def examples(self, pair: ImageCaptionPair, triplet: Optional[TaskTriplet], verdict: Optional[Verdict],
                 seed: int) -> list[TrainingExample]:
        """The pair's training examples (none, one, or two under ``two_stage``); counts into ``stats``."""
        config, counts = self.config, self._counts
        counts["images"] += 1
        if not config.synthetic_task:
            counts["caption_only"] += 1
            return [self._example(pair.id, pair.image, [self.caption_turn(pair, seed)])]
        if triplet is None:
            counts["dropped_no_triplet"] += 1
            return []
        kept = config.task_answer != "rule" or (verdict is not None and verdict.verdict == "yes")
        task = None
        if kept:
            task = self.task_turn(triplet, seed)
            counts[task.answer_kind] += 1
            counts["inverted"] += task.direction == "inverted"
            counts["with_task"] += 1
        else:
            counts["not_kept"] += 1
            counts[f"not_kept_{verdict.verdict if verdict is not None else 'no_verdict'}"] += 1
        if not config.caption_turn:
            if task is None:
                counts["dropped_not_kept"] += 1
                return []
            return [self._example(pair.id, pair.image, [(task.user, task.assistant)])]
        caption = self.caption_turn(pair, seed)
        if task is None:
            counts["caption_only"] += 1
            if config.two_stage:
                return [self._example(f"{pair.id}/caption", pair.image, [caption], stage=1)]
            return [self._example(pair.id, pair.image, [caption])]
        if config.two_stage:
            return [self._example(f"{pair.id}/caption", pair.image, [caption], stage=1),
                    self._example(f"{pair.id}/task", pair.image, [(task.user, task.assistant)], stage=2)]
        task_first = (config.turn_order == "task_first" or
                      (config.turn_order == "seeded" and draw(seed, pair.id, "order") < 0.5))
        counts["task_first"] += task_first
        turns = [(task.user, task.assistant), caption] if task_first else [caption, (task.user, task.assistant)]
        return [self._example(pair.id, pair.image, turns)]

    def compose(self, pairs: Iterable[ImageCaptionPair], triplets: Mapping[str, TaskTriplet],
                verdicts: Mapping[str, Verdict], ctx) -> Iterator[TrainingExample]:
        seed = self._seed(ctx)
        self._counts = Counter()
        try:
            for pair in pairs:
                yield from self.examples(pair, triplets.get(pair.id), verdicts.get(pair.id), seed)
        finally:
            self.stats = self._summary()

    def _summary(self) -> dict:
        """Every counter, zeros included, so that stats.json always has the same keys."""
        keys = ["images", "with_task", "caption_only", "dropped_no_triplet", "dropped_not_kept",
                "informative_only", "informative_plus_precise", "chain_of_thought", "precise_answer",
                "informative_answer", "inverted", "task_first", "not_kept", "default_caption_instruction",
                "placeholders_removed"]
        summary = {key: self._counts.get(key, 0) for key in keys}
        summary["not_kept_by_verdict"] = {key.removeprefix("not_kept_"): value for key, value in
                                          sorted(self._counts.items()) if key.startswith("not_kept_")}
        return summary
