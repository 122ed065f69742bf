"""The ``consistency`` filter: a text-only LLM judges whether the precise answer follows from the
informative one (docs/method.md §5, docs/filtering.md).

The judge is the filter's model slot (``model: {type: causal_lm, model: meta-llama/Meta-Llama-3-8B}``
in the paper's setting; any text-only transformers causal LM). Each triplet fills the few-shot
template (``prompt.py``: the built-in one, or ``prompt: FILE``); the rendering is plain text,
continued as a base LM continues text (the tokenizer's BOS token first when the tokenizer adds one
itself, as Llama-3's does; no chat template even when the tokenizer has one). Decoding is greedy,
``max_new_tokens`` (2) new tokens, special tokens skipped; the text is kept as ``raw`` and parsed
under ``parsing`` (``parsing.py``: ``legacy``, the paper's exact test and the default because it
reproduces the paper's keep rates, or ``normalized``).

A prompt the model cannot take (longer than the backbone's ``max_length``) gets the verdict
``other`` (not kept) with an empty ``raw``; ``stats`` counts it as ``refused`` and lists the first few.
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Any, Literal, Optional, Sequence

from pydantic import ConfigDict, Field, field_validator

from adamllm.backbone import ModelSlot
from adamllm.paths import LocalPath
from adamllm.records import TaskTriplet, Verdict

from .engines import generate_continuous, generate_engine
from .gold import GoldOption, GoldSummary
from .parsing import OTHER, Parsing, parse_verdict, parsings_differ
from .prompt import build_prompt, load_template

MAX_PROBLEMS = 20
MAX_DIFFERENCES = 10


class ConsistencyConfig(GoldOption):
    """Options of the ``consistency`` filter (the ``filter`` section of a run config)."""

    model_config = ConfigDict(extra="forbid")
    model: ModelSlot = Field(description="The judge, a text-only backbone section, e.g. "
                                         "{type: causal_lm, model: meta-llama/Meta-Llama-3-8B}.")
    prompt: Optional[LocalPath] = Field(None, description="A UTF-8 template file with {instruction}, {informative} "
                                                          "and {precise} once each (default: the built-in few-shot prompt).")
    parsing: Parsing = Field("legacy", description="legacy: the stripped, lower-cased text must be exactly yes/no/open "
                                                   "(the paper); normalized: punctuation removed, first word.")
    engine: Optional[Literal["generate_batch", "engine"]] = Field(
        None, description="generate_batch (the default): transformers' continuous batching (text-only models; the "
                          "faster in bench/generation.py); engine: adamllm's padded batches (any backbone). A judge "
                          "whose model section sets engine: vllm generates through vLLM (engine: engine, the only one).")
    batch_size: int = Field(16, ge=1, description="Triplets per judge call and generation batch.")
    max_new_tokens: int = Field(2, ge=1, description="Tokens the judge writes (greedy).")

    @field_validator("prompt")
    @classmethod
    def _usable_template(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            load_template(value)  # a PromptFileError (a ValueError) naming the file
        return value


def bos_prefix(tokenizer: Any) -> str:
    """The BOS token when the tokenizer puts one in front of encoded text itself, else ""."""
    bos = getattr(tokenizer, "bos_token", None)
    if not bos:
        return ""
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return bos if ids and ids[0] == tokenizer.bos_token_id else ""


def judge_engine(chosen: Optional[str], adapter: Any) -> str:
    """What generates the judge's tokens: ``chosen`` (default ``generate_batch``), or ``vllm`` when the
    judge's model section sets ``engine: vllm`` (through ``generate_from_text``, as ``engine`` does;
    transformers' continuous batching would load the model a second time and ignore vLLM).
    ``adapter``: the judge, or None before it is built."""
    if getattr(getattr(adapter, "config", None), "engine", "transformers") != "vllm":
        return chosen or "generate_batch"
    if chosen == "generate_batch":
        raise ValueError("filter.engine: generate_batch is transformers' continuous batching, and the judge's model "
                         "section sets engine: vllm; remove filter.engine (vLLM then generates) or set it to engine")
    return "vllm"


class ConsistencyFilter(GoldSummary):
    """Labels each triplet yes / no / open (or other) with a few-shot LLM judge (``Filter``).

    ``stats`` (this run's counters, merged into ``stats.json``): ``judged``, ``parsing``,
    ``engine``, ``parsings_differ`` (raw outputs the two parsings label differently) with up to
    ten of them in ``parsings_differ_examples``, ``refused`` (prompts too long for the judge)
    with the first five reasons in ``refused_examples``, ``generation_seconds`` and
    ``triplets_per_s``; ``problems`` holds the first twenty refusals.
    """

    def __init__(self, config: ConsistencyConfig) -> None:
        self.config = config
        self.template = load_template(config.prompt)
        self._load_gold(config.gold)
        self._adapter: Any = None
        self._engine = judge_engine(config.engine, None)  # what generates (the judge's model may change it)
        self._counts: Counter = Counter()
        self._differences: list[str] = []
        self._seconds = 0.0
        self.problems: list[str] = []

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    @property
    def stats(self) -> dict[str, Any]:
        seconds = round(self._seconds, 3)
        judged = self._counts["judged"]
        return {"judged": judged, "parsing": self.config.parsing, "engine": self._engine,
                "parsings_differ": self._counts["parsings_differ"], "parsings_differ_examples": list(self._differences),
                "refused": self._counts["refused"], "refused_examples": self.problems[:5], "generation_seconds": seconds,
                "triplets_per_s": round(judged / seconds, 2) if seconds > 0 else None}

    def adapter(self, ctx: Any) -> Any:
        """The judge's adapter, built on first use."""
        if self._adapter is None:
            adapter = ctx.build_model(self.config.model)
            if not callable(getattr(adapter, "generate_from_text", None)):
                raise TypeError(f"backbone {self.config.model.type!r} cannot continue a text prompt "
                                f"(no generate_from_text); the consistency filter needs causal_lm or similar")
            self._engine = judge_engine(self.config.engine, adapter)
            self._adapter = adapter
        return self._adapter

    def prompt(self, triplet: TaskTriplet, adapter: Any = None) -> str:
        """The text the judge continues for ``triplet`` (BOS first when the adapter's tokenizer adds one)."""
        tokenizer = getattr(adapter, "tokenizer", None) if adapter is not None else None
        return (bos_prefix(tokenizer) if tokenizer is not None else "") + build_prompt(self.template, triplet)

    # -- the Filter protocol --------------------------------------------------------------
    def judge(self, triplets: Sequence[TaskTriplet], ctx: Any) -> list[Verdict]:
        adapter = self.adapter(ctx)
        triplets = list(triplets)
        bos = bos_prefix(adapter.tokenizer)
        prompts = [bos + build_prompt(self.template, t) for t in triplets]
        if ctx.prompt_log is not None:  # --preview: the exact prompts sent
            ctx.record_prompts([{"id": t.id, "prompt": p} for t, p in zip(triplets, prompts)])

        def refused(index: int, exc: Exception) -> None:
            self._counts["refused"] += 1
            if len(self.problems) < MAX_PROBLEMS:
                self.problems.append(f"triplet {triplets[index].id}: {exc}")

        started = time.perf_counter()
        try:
            if self._engine == "generate_batch":
                texts = generate_continuous(adapter, prompts, self.config.max_new_tokens, on_error=refused)
            else:
                texts = generate_engine(adapter, prompts, self.config.max_new_tokens, self.batch_size, on_error=refused)
        finally:
            self._seconds += time.perf_counter() - started
        self._counts["judged"] += len(triplets)
        return [self._verdict(t, text) for t, text in zip(triplets, texts)]

    def _verdict(self, triplet: TaskTriplet, text: Optional[str]) -> Verdict:
        if text is None:
            return Verdict(id=triplet.id, verdict=OTHER, raw="")
        if parsings_differ(text):
            self._counts["parsings_differ"] += 1
            if len(self._differences) < MAX_DIFFERENCES and text not in self._differences:
                self._differences.append(text)
        return Verdict(id=triplet.id, verdict=parse_verdict(text, self.config.parsing), raw=text)
