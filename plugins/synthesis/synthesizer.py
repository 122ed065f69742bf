"""The built-in ``adamllm`` synthesizer: a tuned visual instruction synthesizer in a model slot.

For each image-caption pair the prompt is the tuning conversation's first exchange in the
synthesizer's prompt format (user: image + describe request; assistant: the caption) followed
by an opened, empty user turn (docs/method.md §4). The format (``prompt_format.py``) is the
checkpoint's own chat template for synthesizers tuned by adamllm, and the reference conversation
string for the released checkpoint, whose shipped chat template does not match its training. The model then writes hint + instruction,
answer, hint + instruction, answer, ... until its end-of-text token; ``parse`` splits that
continuation at the template's role markers and keeps the earliest instruction answered both
precisely and informatively. The prompt is built template-agnostically: the conversation is
rendered with a placeholder as the last user message and cut at the placeholder, which leaves
exactly the opened user header of whatever template renders it. A pair that cannot be prompted or
generated comes back as a ``Failure`` (the stage quarantines it).

The released ``AdaptLLM/visual-instruction-synthesizer`` runs through the ``llava_next`` backbone
(``{type: llava_next, model: AdaptLLM/visual-instruction-synthesizer}``); a synthesizer tuned by
adamllm on any image-text backbone works the same way, and when the run's ``tune`` stage tuned one
(``data.tune``), its ``OUT/tune/model`` is used instead of the slot's model.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Any, Literal, Optional, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from adamllm.backbone import IMAGE_PLACEHOLDER, GenerationSettings, ModelSlot
from adamllm.generation import generate_all
from adamllm.records import Failure, ImageCaptionPair, TaskTriplet
from adamllm.stages import StageError

from . import prompt_format
from .parse import REASONS, TurnFormat, detect, parse
from .protocol import PROFILES, ProtocolProfile

#: The last user message while rendering; the prompt is cut where it starts.
OPEN_TURN = "\u2063adamllm-open-user-turn\u2063"
#: Reason of a pair that could not be prompted or generated (bad image, too long, ...).
BAD_SAMPLE = "bad_sample"
MAX_PROBLEMS = 20


class MLLMSynthesizerConfig(BaseModel):
    """Options of the ``adamllm`` synthesizer (the ``synthesizer`` section of a run config)."""

    model_config = ConfigDict(extra="forbid")
    model: ModelSlot = Field(description="The synthesizer MLLM, a backbone section, e.g. "
                                         "{type: llava_next, model: AdaptLLM/visual-instruction-synthesizer}.")
    max_new_tokens: int = Field(512, ge=1, description="Generation budget per image (greedy).")
    batch_size: int = Field(8, ge=1, description="Pairs per generation batch.")
    sort_window: int = Field(4, ge=1, description=(
        "Generation batches per length-sorted window: the pairs of a window are sorted by encoded "
        "prompt length (caption and image tokens) before they are cut into batches, so a batch pads "
        "little; a killed run redoes at most one window."))
    profile: str = Field("released", description="The protocol profile (strings the synthesizer was tuned on).")
    prompt_format: Literal["auto", "chat_template", "llava_llama_3"] = Field("auto", description=(
        "How the conversation is written out: chat_template (the checkpoint's own; synthesizers tuned by "
        "adamllm), llava_llama_3 (the reference conversation string the released "
        "AdaptLLM/visual-instruction-synthesizer was trained on: system turn, two BOS), or auto: "
        "llava_llama_3 for the released checkpoint or one with its signature, else chat_template."))
    tuning: dict[str, Any] = Field(default_factory=dict, description=(
        "Trainer options of the tune stage, over the trainer section's (which trains the target model): "
        "the paper tunes its synthesizer for 2 epochs at lr 2e-5, vision tower 2e-6, e.g. "
        "{num_epochs: 2, learning_rate: 2e-5}."))

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in PROFILES:
            raise ValueError(f"unknown protocol profile {value!r}; profiles: {', '.join(sorted(PROFILES))}")
        return value


def open_user_turn_prompt(adapter: Any, caption: str, profile: ProtocolProfile) -> str:
    """The synthesizer prompt for one caption, in the adapter's chat template: the first exchange
    (image + describe request, the caption as answer), then an opened, empty user turn."""
    messages = [{"role": "user", "content": IMAGE_PLACEHOLDER + profile.describe},
                {"role": "assistant", "content": caption},
                {"role": "user", "content": OPEN_TURN}]
    rendered = adapter.render(messages)
    if rendered.count(OPEN_TURN) != 1:
        raise ValueError(f"the {getattr(adapter, 'family', '?')} chat template did not render the last "
                         f"user message exactly once; cannot open a user turn")
    return rendered[:rendered.index(OPEN_TURN)]


class MLLMSynthesizer:
    """Writes at most one task triplet per pair with a tuned synthesizer MLLM (``Synthesizer``).

    ``stats``: counters the stage may merge into ``stats.json``: ``pairs``, ``triplets``, one per
    reason of no triplet (``no_pair``, ``truncated_only``, ``unbalanced``, ``parse_error``,
    ``bad_sample``), ``truncated`` (continuations that ran out of tokens, with or without a
    triplet), ``generated_tokens``, ``generation_seconds`` and ``tokens_per_s``; ``problems``
    holds the first few per-sample errors.
    """

    def __init__(self, config: MLLMSynthesizerConfig) -> None:
        self.config = config
        self.profile: ProtocolProfile = PROFILES[config.profile]
        self._adapter: Any = None
        self.format: prompt_format.PromptFormat | None = None
        self.format_reason = ""
        self._counts: Counter = Counter()
        self._seconds = 0.0
        self.problems: list[str] = []

    @property
    def batch_size(self) -> int:
        """Pairs per ``synthesize`` call (the stage's unit of work): one sorting window."""
        return self.config.batch_size * self.config.sort_window

    @property
    def stats(self) -> dict[str, Any]:
        counts = {key: self._counts.get(key, 0) for key in
                  ("pairs", "triplets", *REASONS, BAD_SAMPLE, "truncated", "generated_tokens")}
        seconds = round(self._seconds, 3)
        counts["generation_seconds"] = seconds
        counts["tokens_per_s"] = round(counts["generated_tokens"] / seconds, 2) if seconds > 0 else None
        if self.format is not None:
            counts.update(prompt_format=self.format.name, prompt_format_reason=self.format_reason)
        return counts

    def adapter(self, ctx: Any) -> Any:
        """The synthesizer model's adapter, built on first use: the model the run's ``tune`` stage
        wrote (``OUT/tune/model``) when it tuned one, else the slot's model as given. Its prompt
        format is chosen (``prompt_format.choose``) and one prompt is encoded before any batch, so
        a format that does not fit the checkpoint stops the stage at once (``StageError``)."""
        if self._adapter is None:
            tuned = getattr(ctx, "tuned_synthesizer_model", lambda: None)()
            adapter = ctx.build_model(self.config.model, tuned)
            if not callable(getattr(adapter, "generate_from_text", None)):
                raise TypeError(f"backbone {self.config.model.type!r} cannot continue a rendered prompt "
                                f"(no generate_from_text); the synthesizer needs an image-text backbone")
            fmt, why = prompt_format.choose(self.config.prompt_format, adapter)
            prompt_format.apply(fmt, adapter)
            try:
                prompt_format.probe(adapter, open_user_turn_prompt(adapter, "A probe caption.", self.profile), fmt, why)
            except (prompt_format.PromptFormatError, ValueError) as exc:
                raise StageError(f"synthesizer: {exc}") from None
            ctx.echo(f"[synthesize] prompt format {fmt.name}: {why}")
            self._adapter, self.format, self.format_reason = adapter, fmt, why
        return self._adapter

    # -- the Synthesizer protocol ---------------------------------------------------------
    def synthesize(self, pairs: Sequence[ImageCaptionPair], ctx: Any) -> list[Union[TaskTriplet, Failure, None]]:
        adapter = self.adapter(ctx)
        results: list[Union[TaskTriplet, Failure, None]] = []
        for start in range(0, len(pairs), self.batch_size):  # windows; generate_all cuts the batches
            results += self._batch(adapter, list(pairs[start:start + self.batch_size]), ctx)
        return results

    # -- internals ------------------------------------------------------------------------
    def _problem(self, failures: dict[int, Failure], i: int, pair: ImageCaptionPair, exc: Exception) -> None:
        self._counts[BAD_SAMPLE] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"pair {pair.id}: {exc}")
        failures[i] = Failure(id=pair.id, kind=BAD_SAMPLE, reason=str(exc))

    def _batch(self, adapter: Any, pairs: list[ImageCaptionPair], ctx: Any) -> list[Union[TaskTriplet, Failure, None]]:
        from adamllm.images import load_rgb

        self._counts["pairs"] += len(pairs)
        prepared: dict[int, tuple[str, Any]] = {}
        failures: dict[int, Failure] = {}
        for i, pair in enumerate(pairs):
            try:
                prepared[i] = (open_user_turn_prompt(adapter, pair.caption, self.profile), load_rgb(pair.image))
            except (OSError, ValueError) as exc:  # unreadable image (BadImage), template trouble
                self._problem(failures, i, pair, exc)
        if ctx.prompt_log is not None:  # --preview: the exact prompts sent, as the engine gets them
            ctx.record_prompts([{"id": pairs[i].id, "prompt": text, "add_bos": bool(self.format and self.format.add_bos),
                     "images": [pairs[i].image], "prompt_format": self.format.name if self.format else None}
                    for i, (text, _) in sorted(prepared.items())])
        if not prepared:
            return [failures.get(i) for i in range(len(pairs))]
        fmt = detect(next(iter(prepared.values()))[0])
        stops = self._stop_tokens(adapter, fmt)
        continuations = self._generate(adapter, pairs, prepared, stops, failures)
        out: list[Union[TaskTriplet, Failure, None]] = []
        for i, pair in enumerate(pairs):
            text = continuations.get(i)
            out.append(failures.get(i) if text is None else self._triplet(pair, text, fmt, stops, adapter))
        return out

    def _stop_tokens(self, adapter: Any, fmt: TurnFormat) -> list[str]:
        """Tokens that end generation: the end-of-text token the synthesizer was tuned to write,
        and the tokenizer's eos unless it is the end-of-turn marker (which must not stop it)."""
        tokens = [getattr(adapter, "end_of_text_token", "") or ""]
        tokenizer = getattr(adapter, "tokenizer", None)
        eos = getattr(tokenizer, "eos_token", None)
        if eos and eos != fmt.end:
            tokens.append(eos)
        tokens = [t for t in dict.fromkeys(tokens) if t]
        return tokens or list(fmt.end_of_text)

    def _generate(self, adapter: Any, pairs: list[ImageCaptionPair], prepared: dict[int, tuple[str, Any]],
                  stops: list[str], failures: dict[int, Failure]) -> dict[int, str]:
        settings = GenerationSettings(max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                      keep_special_tokens=True)
        order = sorted(prepared)
        extra = {"add_bos": True} if self.format is not None and self.format.add_bos else {}
        started = time.perf_counter()
        try:
            texts = generate_all(adapter, [(prepared[i][0], [prepared[i][1]]) for i in order], settings,
                                 batch_size=self.config.batch_size, method="generate_from_text",
                                 on_error=lambda k, exc: self._problem(failures, order[k], pairs[order[k]], exc),
                                 stop_tokens=stops, **extra)
        finally:
            self._seconds += time.perf_counter() - started
        return {i: text for i, text in zip(order, texts) if text is not None}

    def _triplet(self, pair: ImageCaptionPair, text: str, fmt: TurnFormat, end_of_text: list[str],
                 adapter: Any) -> Optional[TaskTriplet]:
        self._counts["generated_tokens"] += _count_tokens(adapter, text)
        triplet, reason, truncated = parse(text, fmt, self.profile, end_of_text)
        if truncated:
            self._counts["truncated"] += 1
        if triplet is None:
            self._counts[reason] += 1
            return None
        self._counts["triplets"] += 1
        instruction, precise, informative = triplet
        return TaskTriplet(id=pair.id, image=pair.image, instruction=instruction, precise=precise,
                           informative=informative, raw=text)


def _count_tokens(adapter: Any, text: str) -> int:
    tokenizer = getattr(adapter, "tokenizer", None)
    if tokenizer is None or not text:
        return 0
    try:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])
    except Exception:  # a tokenizer-like object without that call: no count
        return 0
