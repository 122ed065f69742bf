"""A text-only causal LM as a backbone: any ``transformers`` ``AutoModelForCausalLM`` checkpoint.

``CausalLMAdapter`` (family ``causal_lm``) is the model of a filter's judge (e.g.
``meta-llama/Meta-Llama-3-8B``) and fits any model slot: it implements ``Generator`` fully and
``Backbone`` as far as a text-only model can (encode with labels, encode_all, collate, generate,
module groups, freeze, LoRA targets, save; no packing). It reuses ``VisionLanguageAdapter``'s
machinery (labels placed from growing prefixes of the rendering, never truncated samples,
left-padded batched generation): the tokenizer plays the processor's part and there are no images.
A record with ``<image>`` placeholders, image content items or images raises ``BadSample``.

Rendering (``render``):

* The tokenizer has a chat template: the template renders the conversation (message contents
  are flattened to strings first, as text-only templates expect).
* It has none (base LMs such as Llama-3-8B): **a conversation is the concatenation of its message
  contents, in order, with nothing between them**, and a generation prompt is just the text so
  far (``add_generation_prompt`` adds nothing). A few-shot prompt given as one user message is
  therefore continued as plain text, and in ``[user, assistant]`` the assistant content follows the
  user content directly (put any separator, ``"\\nAnswer:"`` or a space, in the messages). The
  rendering starts with the tokenizer's BOS token when the tokenizer itself adds one
  (``tokenizer("x")`` starts with it, as Llama-3's does), since encoding never adds special tokens.
  Nothing marks the end of an assistant turn here: under policy ``assistant`` no end-of-turn token
  is trained, so generation with a base LM stops at ``max_new_tokens``, an EOS the model chooses
  to write, or ``GenerationSettings.stop_strings``.

Under ``after_first_turn`` the end-of-text token (``<|end_of_text|>`` or ``<|endoftext|>`` where
the vocabulary has it, else the tokenizer's EOS) is appended and trained, as for the image-text
families. The tokenizer must be a fast (``tokenizers``-backed) one: labels are placed by offsets.

``build_tiny_causal_lm`` writes the offline test checkpoint (a ``LlamaForCausalLM`` with the
offline BPE tokenizer); ``adamllm.backbones.tiny.build_tiny("causal_lm", ...)`` dispatches to it.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch

from adamllm.backbone import IMAGE_PLACEHOLDER, BackboneConfig, BadSample, LabelPolicy

from .adapter import _DTYPES, LORA_PROJECTIONS, VisionLanguageAdapter
from .checkpoints import check_weights, safe_from_pretrained

__all__ = ["CausalLMAdapter", "build_tiny_causal_lm", "image_text_model_type"]

#: End-of-text tokens looked for in the vocabulary (Llama-3, Qwen/GPT-2), before the EOS token.
_END_OF_TEXT_CANDIDATES = ("<|end_of_text|>", "<|endoftext|>")


def image_text_model_type(config: Any) -> str | None:
    """The ``model_type`` of a transformers config when it describes an image-text model, else None."""
    from transformers.models.auto import modeling_auto

    model_type = getattr(config, "model_type", "") or ""
    multimodal = set(modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)
    multimodal |= set(getattr(modeling_auto, "MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES", {}))
    if model_type in multimodal or getattr(config, "vision_config", None) is not None:
        return model_type or type(config).__name__
    return None


def _text_content(content: Any) -> str:
    """A message's content as text; an image anywhere in it is a ``BadSample``."""
    if isinstance(content, str):
        if IMAGE_PLACEHOLDER in content:
            raise BadSample(f"causal_lm is a text-only model: a message has {content.count(IMAGE_PLACEHOLDER)} "
                            f"{IMAGE_PLACEHOLDER} placeholder(s); use an image-text backbone type")
        return content
    parts = []
    for part in content:
        kind = part.get("type")
        if kind in ("image", "image_url", "video") or "image" in part or "image_url" in part:
            raise BadSample("causal_lm is a text-only model: a message has an image content item; "
                            "use an image-text backbone type")
        parts.append(part.get("text", ""))
    return "".join(parts)


class CausalLMAdapter(VisionLanguageAdapter):
    """A text-only ``AutoModelForCausalLM`` (Llama, Mistral, Qwen2, ...); the tokenizer is the processor.

    Every parameter is in module group ``language``; ``vision`` and ``projector`` are empty.
    """

    family: ClassVar[str] = "causal_lm"
    image_token: ClassVar[str] = ""
    pixel_keys: ClassVar[tuple[str, ...]] = ()
    supports_packing: ClassVar[bool] = False

    def __init__(self, config: BackboneConfig | None = None, *, model: Any = None, processor: Any = None,
                 tokenizer: Any = None) -> None:
        super().__init__(config, model=model, processor=processor if processor is not None else tokenizer)
        self._checked = model is not None
        if self._processor is not None:
            self._prepare_tokenizer(self._processor)

    # -- loading -------------------------------------------------------------------------
    def _check_text_only(self) -> None:
        """Refuse an image-text checkpoint (read from its config, before any weights load)."""
        if self._checked:
            return
        from transformers import AutoConfig

        cfg = self.config
        model_config = AutoConfig.from_pretrained(cfg.model, revision=cfg.revision,
                                                  trust_remote_code=cfg.trust_remote_code)
        model_type = image_text_model_type(model_config)
        if model_type is not None:
            from .families import ADAPTERS

            hint = (f"backbone type {model_type!r}" if model_type in ADAPTERS
                    else f"an image-text backbone type ({', '.join(sorted(ADAPTERS))} or a plugin's)")
            raise ValueError(f"{cfg.model} is an image-text checkpoint (model_type {model_type!r}), not a "
                             f"text-only causal LM: use the matching backbone type, {hint}, instead of "
                             f"{self.family!r}")
        check_weights(Path(cfg.model), cfg.model, bool(getattr(cfg, "allow_pickle_weights", False)))
        self._checked = True

    def model_source(self) -> str:
        self._check_text_only()
        return str(self.config.model)

    def _load_model(self):
        from transformers import AutoModelForCausalLM

        self._check_text_only()
        cfg = self.config
        kwargs: dict[str, Any] = {"trust_remote_code": cfg.trust_remote_code, "revision": cfg.revision,
                                  "dtype": "auto" if cfg.dtype == "auto" else _DTYPES[cfg.dtype]}
        if cfg.attn_implementation:
            kwargs["attn_implementation"] = cfg.attn_implementation
        if cfg.device == "auto":
            kwargs["device_map"] = "auto"
        model = safe_from_pretrained(AutoModelForCausalLM.from_pretrained, cfg.model,
                                     bool(getattr(cfg, "allow_pickle_weights", False)), **kwargs)
        if cfg.device != "auto":
            model.to(cfg.device)
        return model

    def _load_processor(self):
        from transformers import AutoTokenizer

        self._check_text_only()
        if self.config.min_pixels is not None or self.config.max_pixels is not None:
            raise ValueError("min_pixels/max_pixels apply to qwen2_vl only, not causal_lm (a text-only model)")
        tokenizer = AutoTokenizer.from_pretrained(self.config.model, revision=self.config.revision,
                                                  trust_remote_code=self.config.trust_remote_code)
        self._prepare_tokenizer(tokenizer)
        return tokenizer

    def _prepare_tokenizer(self, tokenizer) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(f"causal_lm needs a fast (tokenizers-backed) tokenizer for label offsets; "
                             f"{type(tokenizer).__name__} of {self.config.model or 'the checkpoint'} is not one")
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise ValueError("the tokenizer has neither a pad nor an eos token; batches cannot be padded")
            tokenizer.pad_token = tokenizer.eos_token

    @property
    def tokenizer(self):
        return self.processor

    @property
    def image_token_id(self) -> int:
        """No image token: -1, which is never a token id."""
        return -1

    @property
    def end_of_text_token(self) -> str:  # type: ignore[override]
        """Appended and trained under ``after_first_turn``: the vocabulary's end-of-text token, else EOS."""
        tok = self.tokenizer
        for token in _END_OF_TEXT_CANDIDATES:
            if token in tok.all_special_tokens:
                return token
        return tok.eos_token

    def consumed_image_tokens(self, sample: dict) -> int | None:
        return 0

    # -- rendering and encoding --------------------------------------------------------------
    def _bos_prefix(self) -> str:
        """The BOS token when the tokenizer adds one itself (``tokenizer("x")`` starts with it), else ""."""
        tok = self.tokenizer
        cached = getattr(self, "_bos_cache", None)
        if cached is None or cached[0] is not tok:
            ids = tok("x", add_special_tokens=True)["input_ids"] if tok.bos_token is not None else []
            cached = (tok, tok.bos_token if ids and ids[0] == tok.bos_token_id else "")
            self._bos_cache = cached
        return cached[1]

    def render(self, messages: Sequence[dict], add_generation_prompt: bool = False) -> str:
        """The chat template's rendering, or without one the plain concatenation (module docstring)."""
        flat = [{"role": m["role"], "content": _text_content(m["content"])} for m in messages]
        template = self.tokenizer.chat_template
        if not template:
            return self._bos_prefix() + "".join(m["content"] for m in flat)
        return self.tokenizer.apply_chat_template(flat, tokenize=False, add_generation_prompt=add_generation_prompt)

    def encode(self, messages: Sequence[dict], images: Sequence[Any] = (), policy: LabelPolicy = "assistant",
               add_generation_prompt: bool = False, image_root: str | os.PathLike | None = None) -> dict:
        """One sample (``input_ids``, ``attention_mask``, ``labels``, ``num_image_tokens`` = 0).

        Raises ``BadSample`` for images or ``<image>`` placeholders, ``SampleTooLong`` (never truncates).
        """
        images = list(images or ())
        if images:
            raise BadSample(f"causal_lm is a text-only model: the record has {len(images)} image(s); "
                            f"use an image-text backbone type")
        for message in messages:
            _text_content(message["content"])
        return super().encode(messages, (), policy, add_generation_prompt=add_generation_prompt)

    def _process(self, text: str, images: list) -> dict:
        out = self.tokenizer(text=[text], add_special_tokens=False, return_tensors="pt")
        return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}

    # -- batching ------------------------------------------------------------------------
    def _collate_images(self, samples: Sequence[dict], padding_side: str) -> dict:
        return {}

    def collate_packed(self, samples: Sequence[dict]) -> dict:
        raise NotImplementedError("causal_lm does not pack samples (supports_packing is False): "
                                  "batch with collate instead")

    def packed_training(self, model) -> contextlib.AbstractContextManager:
        raise NotImplementedError("causal_lm does not pack samples (supports_packing is False): "
                                  "train on collate's padded batches instead")

    # -- generation ----------------------------------------------------------------------
    def stop_token_ids(self) -> list[int]:
        """EOS, the end-of-text token and the model's own generation-config EOS ids."""
        ids = set(super().stop_token_ids())
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update([eos] if isinstance(eos, int) else list(eos or ()))
        return sorted(ids)

    # -- module groups, LoRA, saving ------------------------------------------------------
    def group_of(self, parameter_name: str) -> str:
        return "language"

    def lora_target_modules(self) -> str:
        """The attention and MLP projections (Llama naming) where the model has them, else PEFT's
        ``all-linear`` (every linear layer but the output head)."""
        pattern = rf".*\.({'|'.join(LORA_PROJECTIONS)})"
        import re

        regex = re.compile(pattern)
        if any(regex.fullmatch(name) for name, _ in self.model.named_modules()):
            return pattern
        return "all-linear"

    def save(self, out_dir: str | os.PathLike) -> Path:
        """A complete, reloadable directory: safetensors weights, tokenizer, chat template (if any)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out, safe_serialization=True)
        self.tokenizer.save_pretrained(out)
        template = self.tokenizer.chat_template
        if template and not (out / "chat_template.jinja").exists():
            (out / "chat_template.jinja").write_text(template, encoding="utf-8")
        return out


# ---------------------------------------------------------------------------------------------
# The tiny offline checkpoint
# ---------------------------------------------------------------------------------------------
#: Token roles of the tiny checkpoint. With a chat template the end of a turn is ``<|eot_id|>``
#: (Llama-3-Instruct); the base build ends text with ``<|end_of_text|>`` (Llama-3 base).
TINY_ROLES = {
    True: {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>", "pad": "<|finetune_right_pad_id|>",
           "end_of_text": "<|end_of_text|>"},
    False: {"bos": "<|begin_of_text|>", "eos": "<|end_of_text|>", "pad": "<|finetune_right_pad_id|>",
            "end_of_text": "<|end_of_text|>"},
}


def build_tiny_causal_lm(out_dir: str | os.PathLike, size: str = "tiny", seed: int = 0, *,
                         chat_template: bool = True) -> Path:
    """Write a random ``LlamaForCausalLM`` checkpoint with the offline BPE tokenizer to ``out_dir``.

    The language-model shapes are the image-text builds' (``tiny._TEXT``): about 0.2 M parameters
    for ``tiny``, 4.5 M for ``small``. ``chat_template=True`` gives the tokenizer a Llama-3 chat
    template and ``<|eot_id|>`` as EOS; ``chat_template=False`` writes a base LM without one (EOS
    ``<|end_of_text|>``). bos/eos/pad ids are set in the config and the generation config. The
    weights are initialised under ``torch.manual_seed(seed)`` (the caller's RNG is left alone).
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    from . import tiny
    from .offline_tokenizer import build_tokenizer
    from .templates import _llama3_template

    if size not in tiny.SIZES or size in tiny.LARGE_SIZES:
        small = [s for s in tiny.SIZES if s not in tiny.LARGE_SIZES]
        raise ValueError(f"unknown size {size!r} for causal_lm; expected one of {small}")
    text = dict(tiny._TEXT[size])
    vocab_size = text.pop("vocab_size")
    roles = TINY_ROLES[bool(chat_template)]
    tokenizer = build_tokenizer(
        vocab_size, tiny.SPECIAL_TOKENS["causal_lm"],
        bos_token=roles["bos"], eos_token=roles["eos"], pad_token=roles["pad"],
        chat_template=_llama3_template("") if chat_template else None,  # text-only: images never reach it
        padding_side="right", model_max_length=text["max_position_embeddings"],
    )
    ids = {role: tokenizer.convert_tokens_to_ids(token) for role, token in roles.items()}
    config = LlamaConfig(**text, vocab_size=len(tokenizer), bos_token_id=ids["bos"], eos_token_id=ids["eos"],
                         pad_token_id=ids["pad"], tie_word_embeddings=False,
                         rope_parameters={"rope_type": "default", "rope_theta": 500_000.0})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.eval()
    gen = model.generation_config
    gen.bos_token_id = ids["bos"]
    gen.eos_token_id = sorted({ids["eos"], ids["end_of_text"]})
    gen.pad_token_id = ids["pad"]

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    marker = {
        "builder": "adamllm.backbones.tiny.build_tiny",
        "family": "causal_lm",
        "size": size,
        "seed": seed,
        "chat_template": bool(chat_template),
        "num_parameters": tiny.count_parameters(model),
        "vocab_size": len(tokenizer),
        "model_type": config.model_type,
        "architecture": type(model).__name__,
    }
    (out / tiny.MARKER_FILE).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out
