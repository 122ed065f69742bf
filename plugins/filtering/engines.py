"""Two ways to generate the judge's few tokens for a batch of rendered prompts.

* ``generate_batch`` (the default): transformers' continuous batching (``model.generate_batch``:
  a paged KV cache, prefill in chunks, requests scheduled as they finish). Text-only models only:
  it needs the adapter's ``model`` (a transformers model with ``generate_batch``),
  ``encode_prompt`` and ``stop_token_ids`` (``causal_lm`` has them). The KV cache is sized from
  the batch itself (left to its defaults it takes 90% of free memory, which cost seconds per call
  on a CPU); on CPU, pages of 32 tokens and prefill chunks of 512 tokens (the paged attention's
  mask grows with the chunk: larger chunks were slower). A failed request is an error (transformers
  only logs it). No out-of-memory back-off: lower ``batch_size`` if a batch does not fit.
* ``engine``: ``adamllm.generation.generate_all`` through the adapter's ``generate_from_text``:
  length-sorted, left-padded batches, OOM back-off. Works for every backbone.

Both decode greedily and skip special tokens; they give the same text for the same prompts (the
tests and the bench check it). Measured on CPU (``bench/generation.py --only filter``: the
``small`` tiny causal_lm, 64 triplets of 780-888 prompt tokens, 2 threads, batch 16):
per-sample generation 3.3 triplets/s, ``engine`` 4.3 (1.32x), ``generate_batch`` 6.7 (2.04x).
A 2-token judgement is all prefill, and prefill in 512-token chunks beat one padded 16 x 888
forward. But each ``generate_batch`` call has a fixed cost (a scheduler thread started and
stopped, garbage collection) of about 0.55 s on this CPU, which a small batch or a fast GPU does
not win back (4 short prompts on the tiny model: 0.56 s against 0.008 s through ``engine``).
Not measured on a GPU (none was available): there, compare ``engine: engine`` and a larger
``batch_size`` before a long run.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

from adamllm.backbone import GenerationSettings
from adamllm.generation import GenerationError, generate_all

ENGINES = ("generate_batch", "engine")
#: Tokens per KV-cache page when the cache is sized on CPU.
CPU_PAGE_SIZE = 32
#: Tokens scheduled per forward pass on CPU: prefill is chunked to this size (larger chunks were
#: slower on CPU: the paged attention's mask grows with it).
CPU_MAX_BATCH_TOKENS = 512

OnError = Optional[Callable[[int, Exception], None]]


def generate_engine(adapter: Any, prompts: Sequence[str], max_new_tokens: int, batch_size: int,
                    on_error: OnError = None) -> list[Optional[str]]:
    """Greedy continuations through the generation engine (one per prompt; None when refused)."""
    settings = GenerationSettings(max_new_tokens=max_new_tokens, do_sample=False)
    return generate_all(adapter, [(p, []) for p in prompts], settings, batch_size=batch_size,
                        method="generate_from_text", on_error=on_error)


def generate_continuous(adapter: Any, prompts: Sequence[str], max_new_tokens: int,
                        on_error: OnError = None) -> list[Optional[str]]:
    """Greedy continuations through ``model.generate_batch`` (one per prompt; None when refused)."""
    from transformers import GenerationConfig
    from transformers.generation import ContinuousBatchingConfig

    model = getattr(adapter, "model", None)
    needed = [name for name in ("encode_prompt", "stop_token_ids") if not callable(getattr(adapter, name, None))]
    if not callable(getattr(model, "generate_batch", None)) or needed:
        raise TypeError(f"{getattr(adapter, 'family', type(adapter).__name__)} cannot generate through "
                        f"transformers' continuous batching (generate_batch needs a text-only transformers model"
                        f"{' and the adapter methods ' + ', '.join(needed) if needed else ''}); set engine: engine")
    tokenizer = adapter.tokenizer
    inputs: dict[int, list[int]] = {}
    for i, prompt in enumerate(prompts):
        try:
            inputs[i] = adapter.encode_prompt(prompt)["input_ids"].tolist()
        except ValueError as exc:  # SampleTooLong, BadSample
            if on_error is not None:
                on_error(i, exc)
    answers: list[Optional[str]] = [None] * len(prompts)
    if not inputs:
        return answers
    order = sorted(inputs)
    generation = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False,
                                  eos_token_id=adapter.stop_token_ids(), pad_token_id=tokenizer.pad_token_id)
    on_cpu = next(model.parameters()).device.type == "cpu"
    sizes = {"page_size": CPU_PAGE_SIZE, "max_batch_tokens": CPU_MAX_BATCH_TOKENS} if on_cpu else {}
    page = sizes.get("page_size", ContinuousBatchingConfig().page_size)
    pages = sum(math.ceil((len(inputs[i]) + max_new_tokens) / page) for i in order)
    cache = ContinuousBatchingConfig(num_blocks=pages + 1, **sizes)
    was_training = model.training
    model.eval()
    try:
        results = model.generate_batch(inputs=[inputs[i] for i in order], generation_config=generation,
                                       continuous_batching_config=cache, progress_bar=False, warmup=False)
    finally:
        model.train(was_training)
    outputs = list(results.values())  # in the order of the inputs (transformers reorders them)
    failed = [o.request_id for o in outputs if o.error is not None]
    if len(outputs) != len(order) or failed:
        raise GenerationError(f"generate_batch answered {len(outputs) - len(failed)} of {len(order)} prompts"
                              + (f"; failed: {', '.join(failed[:5])}" if failed else "")
                              + "; see the log above, or set engine: engine")
    for i, output in zip(order, outputs):
        answers[i] = tokenizer.decode(output.generated_tokens, skip_special_tokens=True)
    return answers
