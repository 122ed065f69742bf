"""Tiny offline checkpoints of the real architectures, built from nothing.

`build_tiny(family, out_dir, size, seed)` writes a complete checkpoint directory: a randomly
initialised model of the real architecture (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LLaVA-NeXT on a
Llama-3 language model, Mllama / Llama-3.2-Vision) saved as safetensors, its processor, a BPE tokenizer trained offline
(`offline_tokenizer`), the chat template (`templates`) and an ``adamllm_tiny.json`` that records
family, size and seed. Plain transformers loads the result:
``AutoModelForImageTextToText.from_pretrained(d)``, ``AutoTokenizer.from_pretrained(d)`` and the
family's ``*Pil`` image-processor class; the processor loads with
`adamllm.backbones.processors.load_processor(family, d)`.

Sizes:

* ``tiny`` (about 0.2-0.3 M parameters, vocabulary 1024, images of a few tokens): unit tests.
* ``small`` (about 5.5 M parameters, vocabulary 4096, text hidden 256 x 4 layers, vision 128
  wide x 4 layers): demos. A 224 px image gives 36 image tokens (Qwen2-VL, Qwen2.5-VL, Qwen3-VL),
  88 (LLaVA-NeXT) or one ``<|image|>`` token plus 4 tiles x 24 = 96 cross-attended vision states
  (Mllama).

The Qwen-VL shapes and configs live in `adamllm.backbones.tiny_qwen`.

Mllama note: transformers initialises Mllama's tanh gates to zero, which makes a random model
ignore its images; the builder sets them to `MLLAMA_GATE_VALUE` (see `_open_gates`).

Text-only: ``build_tiny("causal_lm", out_dir, size, seed, chat_template=True)`` writes a
``LlamaForCausalLM`` with the same language-model shapes, the Llama-3 special tokens and (unless
``chat_template=False``, a base LM) a Llama-3 chat template; it is built by
`adamllm.backbones.causal_lm.build_tiny_causal_lm` and loads with ``AutoModelForCausalLM``.
``causal_lm`` is not in `FAMILIES` (the image-text families).

All numbers live in `tiny_config`. The build is deterministic: the same family, size and seed
give a bit-identical ``model.safetensors`` (and identical tokenizer files on any machine).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Sequence

from .checkpoints import write_hub_layout
from .tiny_qwen import QWEN_FAMILIES, QWEN_FAMILY_SPECS, qwen_model_config

__all__ = [
    "FAMILIES",
    "MARKER_FILE",
    "MLLAMA_GATE_VALUE",
    "LARGE_SIZES",
    "SIZES",
    "SPECIAL_TOKENS",
    "TOKEN_ROLES",
    "build_model_config",
    "build_processor",
    "build_tiny",
    "build_tokenizer",
    "keep_whole",
    "count_image_tokens",
    "count_parameters",
    "read_marker",
    "tiny_config",
]

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_next", "mllama")
SIZES = ("tiny", "small", "2b")
#: Sizes built for some families only: the real models' dimensions, random weights, for GPU checks
#: (``bench/gpu_check.py``); far too large for a CPU test.
LARGE_SIZES = {"2b": ("qwen2_vl",)}

#: Written beside config.json; records that a directory is an adamllm tiny build.
MARKER_FILE = "adamllm_tiny.json"

_QWEN_SPECIAL = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
    "<|quad_start|>", "<|quad_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
_LLAMA3_SPECIAL = (
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
)

#: Special tokens per family, in id order (they take ids 0, 1, 2, ...).
SPECIAL_TOKENS: dict[str, tuple[str, ...]] = {
    "causal_lm": _LLAMA3_SPECIAL,  # text-only Llama-3 (built by causal_lm.build_tiny_causal_lm)
    "qwen2_vl": _QWEN_SPECIAL,
    "qwen2_5_vl": _QWEN_SPECIAL,
    "qwen3_vl": _QWEN_SPECIAL,
    "llava_next": _LLAMA3_SPECIAL + ("<image>",),
    "mllama": _LLAMA3_SPECIAL + ("<|image|>",),
}

_QWEN_ROLES = {"bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>", "end_of_text": "<|endoftext|>",
               "image": "<|image_pad|>"}

#: Which special token plays which part. ``bos`` is None for the Qwen-VL tokenizers (as in the
#: real ones); the model config's bos id is then ``<|endoftext|>``, as in the real configs.
TOKEN_ROLES: dict[str, dict[str, str | None]] = {
    "qwen2_vl": dict(_QWEN_ROLES),
    "qwen2_5_vl": dict(_QWEN_ROLES),
    "qwen3_vl": dict(_QWEN_ROLES),
    "llava_next": {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>",
                   "pad": "<|finetune_right_pad_id|>", "end_of_text": "<|end_of_text|>",
                   "image": "<image>"},
    "mllama": {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>",
               "pad": "<|finetune_right_pad_id|>", "end_of_text": "<|end_of_text|>",
               "image": "<|image|>"},
}

# Language-model shapes shared by the families of one size.
_TEXT = {
    "tiny": {"vocab_size": 1024, "hidden_size": 64, "intermediate_size": 128,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "max_position_embeddings": 4096},
    "small": {"vocab_size": 4096, "hidden_size": 256, "intermediate_size": 512,
              "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
              "max_position_embeddings": 8192},
    # Qwen2-VL-2B's language model (the tokenizer stays a 4096-entry offline BPE; the embedding
    # matrix has the real model's 151,936 rows, tied to the LM head as in the real model)
    "2b": {"vocab_size": 4096, "model_vocab_size": 151_936, "hidden_size": 1536, "intermediate_size": 8960,
           "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
           "max_position_embeddings": 32768, "tie_word_embeddings": True},
}

# Per family and size: vision tower, image processor, processor and family-specific extras.
_FAMILY = {
    **QWEN_FAMILY_SPECS,
    ("llava_next", "tiny"): {
        "vision": {"model_type": "clip_vision_model", "image_size": 32, "patch_size": 8,
                   "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                   "num_attention_heads": 2, "projection_dim": 32},
        "image_grid_pinpoints": [[32, 64], [64, 32], [64, 64]],
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
    },
    ("llava_next", "small"): {
        # base 4x4 grid + AnyRes tiles of 4x4: a square image -> 16 + 8x8 + 8 newlines = 88
        "vision": {"model_type": "clip_vision_model", "image_size": 56, "patch_size": 14,
                   "hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 4,
                   "num_attention_heads": 4, "projection_dim": 128},
        "image_grid_pinpoints": [[56, 112], [112, 56], [112, 112], [56, 168], [168, 56]],
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
    },
    ("mllama", "tiny"): {
        "vision": {"hidden_size": 32, "num_hidden_layers": 2, "num_global_layers": 1,
                   "attention_heads": 2, "intermediate_size": 64, "image_size": 32,
                   "patch_size": 8, "max_num_tiles": 4, "intermediate_layers_indices": [0]},
        "cross_attention_layers": [1],
    },
    ("mllama", "small"): {
        "vision": {"hidden_size": 128, "num_hidden_layers": 4, "num_global_layers": 1,
                   "attention_heads": 4, "intermediate_size": 512, "image_size": 56,
                   "patch_size": 14, "max_num_tiles": 4, "intermediate_layers_indices": [1, 3]},
        "cross_attention_layers": [2],
    },
}


def _special_tokens(family: str, image_token: str | None = None) -> tuple[str, ...]:
    tokens = SPECIAL_TOKENS[family]
    if image_token is None:
        return tokens
    return tuple(image_token if t == TOKEN_ROLES[family]["image"] else t for t in tokens)


def _roles(family: str, image_token: str | None = None) -> dict[str, str | None]:
    roles = dict(TOKEN_ROLES[family])
    if image_token is not None:
        roles["image"] = image_token
    return roles


def _template(family: str, image_token: str | None = None) -> str:
    from .templates import template_for

    template = template_for(family)
    if image_token is not None:  # llava_next writes "<image>\n" per image
        template = template.replace(TOKEN_ROLES[family]["image"], image_token)
    return template


def _check_image_token(family: str, image_token: str | None) -> None:
    if image_token is None:
        return
    if family != "llava_next":
        raise ValueError(f"image_token applies to llava_next only, not {family}")
    if image_token in SPECIAL_TOKENS[family] and image_token != TOKEN_ROLES[family]["image"]:
        raise ValueError(f"image_token {image_token!r} is already another special token")


def _check(family: str, size: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {SIZES}")
    if size in LARGE_SIZES and family not in LARGE_SIZES[size]:
        raise ValueError(f"size {size!r} is built for {', '.join(LARGE_SIZES[size])} only, not {family!r}")


def tiny_config(family: str, size: str = "tiny") -> dict[str, Any]:
    """All the numbers of one build as a plain dict (a fresh copy; safe to modify).

    Keys: ``family``, ``size``, ``vocab_size``, ``text`` (language-model shapes), ``vision``
    (vision-tower config), plus family-specific entries (``mrope_section`` and
    ``image_processor`` for the Qwen-VL families; ``image_grid_pinpoints``, ``vision_feature_layer`` and
    ``vision_feature_select_strategy`` for LLaVA-NeXT; ``cross_attention_layers`` for Mllama).
    Derived values are filled in (Mllama's ``vision_output_dim``).
    """
    _check(family, size)
    text = dict(_TEXT[size])
    spec = copy.deepcopy(_FAMILY[(family, size)])
    spec.update(family=family, size=size, vocab_size=text.pop("vocab_size"), text=text)
    if family == "mllama":
        vision = spec["vision"]
        vision["vision_output_dim"] = vision["hidden_size"] * (1 + len(vision["intermediate_layers_indices"]))
    return spec


# ---------------------------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------------------------
def build_tokenizer(family: str, size: str = "tiny", *, image_token: str | None = None, words: Sequence[str] = ()):
    """The family's tokenizer (BPE trained offline; deterministic) with its chat template.
    ``image_token`` (llava_next) replaces ``<image>`` among the special tokens and in the template.
    ``words``: kept whole (``keep_whole``)."""
    from .offline_tokenizer import build_tokenizer as _build

    _check_image_token(family, image_token)
    spec = tiny_config(family, size)
    roles = _roles(family, image_token)
    return keep_whole(_build(
        spec["vocab_size"],
        _special_tokens(family, image_token),
        bos_token=roles["bos"],
        eos_token=roles["eos"],
        pad_token=roles["pad"],
        chat_template=_template(family, image_token),
        padding_side="right",
        model_max_length=spec["text"]["max_position_embeddings"],
    ), words)


def keep_whole(tokenizer, words: Sequence[str] = ()):
    """Add each of ``words`` to ``tokenizer`` as one token, matched only as a whole word, so that it
    is the same token after a space (the space is then a token of its own) and at the start of a
    turn; give each capitalisation wanted (``Two`` and ``two`` are two words). The
    offline BPE splits most words into pieces, differently with and without a space before them
    (`` hexagon``: 4 pieces; ``hexagon`` after a newline: 4 others): a tiny model trained for
    minutes cannot learn to copy such a word from its prompt into an answer (docs/shapes.md), a
    real model's tokenizer and pre-training make it routine. Returns ``tokenizer``."""
    if words:
        from tokenizers import AddedToken

        tokenizer.add_tokens([AddedToken(w, single_word=True, normalized=False) for w in dict.fromkeys(words)])
    return tokenizer


def _token_ids(family: str, tokenizer, image_token: str | None = None) -> dict[str, int]:
    ids = {}
    for role, token in _roles(family, image_token).items():
        if token is not None:
            ids[role] = tokenizer.convert_tokens_to_ids(token)
    if "bos" not in ids:  # Qwen2-VL: the config's bos is <|endoftext|>, as in the real model
        ids["bos"] = ids["end_of_text"]
    return ids


def build_model_config(family: str, size: str = "tiny", tokenizer=None, *, image_token: str | None = None):
    """The transformers config of the model (bos/eos/pad ids set explicitly)."""
    spec = tiny_config(family, size)
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer(family, size, image_token=image_token)
    ids = _token_ids(family, tokenizer, image_token)
    shapes = dict(spec["text"])
    model_vocab = shapes.pop("model_vocab_size", None)
    text = dict(shapes, vocab_size=max(model_vocab or 0, len(tokenizer)), bos_token_id=ids["bos"],
                eos_token_id=ids["eos"], pad_token_id=ids["pad"])
    if family in QWEN_FAMILIES:
        cfg = qwen_model_config(family, spec, text, tokenizer)
    elif family == "llava_next":
        from transformers import LlavaNextConfig

        text["model_type"] = "llama"
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 500_000.0}
        vision_cfg = spec["vision"]
        grid = vision_cfg["image_size"] // vision_cfg["patch_size"]
        cfg = LlavaNextConfig(
            vision_config=dict(vision_cfg), text_config=text,
            image_token_index=ids["image"],
            image_grid_pinpoints=[list(p) for p in spec["image_grid_pinpoints"]],
            vision_feature_layer=spec["vision_feature_layer"],
            vision_feature_select_strategy=spec["vision_feature_select_strategy"],
            image_seq_length=grid * grid,
        )
    else:
        from transformers import MllamaConfig

        text["cross_attention_layers"] = list(spec["cross_attention_layers"])
        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 500_000.0}
        cfg = MllamaConfig(vision_config=dict(spec["vision"]), text_config=text,
                           image_token_index=ids["image"])
    for key in ("bos", "eos", "pad"):
        setattr(cfg, f"{key}_token_id", ids[key])  # top level too, for generate's defaults
    return cfg


def build_processor(family: str, size: str = "tiny", tokenizer=None, *, image_token: str | None = None):
    """The family's processor (PIL image processor; the image-only subclasses for the Qwen-VL families)."""
    from .processors import image_processor_class, processor_class

    spec = tiny_config(family, size)
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer(family, size, image_token=image_token)
    image_cls, proc_cls = image_processor_class(family), processor_class(family)
    template = _template(family, image_token)
    if family in QWEN_FAMILIES:
        image_processor = image_cls(**spec["image_processor"])
        return proc_cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)
    vision = spec["vision"]
    side = vision["image_size"]
    if family == "llava_next":
        image_processor = image_cls(
            size={"shortest_edge": side}, crop_size={"height": side, "width": side},
            image_grid_pinpoints=[list(p) for p in spec["image_grid_pinpoints"]],
        )
        return proc_cls(
            image_processor=image_processor, tokenizer=tokenizer, chat_template=template,
            patch_size=vision["patch_size"],
            vision_feature_select_strategy=spec["vision_feature_select_strategy"],
            num_additional_image_tokens=1,  # CLIP's CLS token
            image_token=_roles(family, image_token)["image"],
        )
    image_processor = image_cls(size={"height": side, "width": side},
                                max_image_tiles=vision["max_num_tiles"])
    return proc_cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)


# ---------------------------------------------------------------------------------------------
# The checkpoint directory
# ---------------------------------------------------------------------------------------------
def build_tiny(family: str, out_dir: str | os.PathLike, size: str = "tiny", seed: int = 0, *,
               chat_template: bool = True, image_token: str | None = None, words: Sequence[str] = ()) -> Path:
    """Write a complete random checkpoint of `family` into `out_dir` and return its path.

    ``family="causal_lm"`` builds the text-only checkpoint (`causal_lm.build_tiny_causal_lm`);
    ``chat_template=False`` applies to it only (a base LM without a chat template).
    ``image_token`` (llava_next only) declares another image token than ``<image>`` in the
    tokenizer, template, processor and model config: ``image_token="<|reserved_special_token_4|>"``
    gives a stand-in shaped like the released synthesizer ``AdaptLLM/visual-instruction-synthesizer``.

    Files: ``config.json``, ``generation_config.json``, ``model.safetensors``,
    ``processor_config.json`` (image processor nested inside), ``tokenizer.json``,
    ``tokenizer_config.json``, ``chat_template.jinja`` and ``adamllm_tiny.json``.
    The weights are initialised under ``torch.manual_seed(seed)`` (the caller's RNG state is
    left untouched): the same seed gives a bit-identical ``model.safetensors``.
    ``words``: added to the tokenizer as whole-word tokens (``keep_whole``; image-text families).
    """
    if family == "causal_lm" and words:
        raise ValueError("words (tiny_words) apply to the image-text families; causal_lm takes none")
    if family == "causal_lm":
        from .causal_lm import build_tiny_causal_lm

        return build_tiny_causal_lm(out_dir, size=size, seed=seed, chat_template=chat_template)
    if not chat_template:
        raise ValueError(f"chat_template=False applies to causal_lm only; {family} always has a chat template")
    import torch
    from transformers import AutoModelForImageTextToText

    _check(family, size)
    _check_image_token(family, image_token)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(family, size, image_token=image_token, words=words)
    config = build_model_config(family, size, tokenizer, image_token=image_token)
    processor = build_processor(family, size, tokenizer, image_token=image_token)
    ids = _token_ids(family, tokenizer, image_token)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # the real sizes are written in bf16, as the real checkpoints are (half the disk and load time)
        dtype = torch.bfloat16 if size in LARGE_SIZES else None
        model = AutoModelForImageTextToText.from_config(config, **({"dtype": dtype} if dtype else {}))
    if family == "mllama":
        _open_gates(model)
    model.eval()
    gen = model.generation_config
    gen.bos_token_id = ids["bos"]
    gen.eos_token_id = [ids["eos"], ids["end_of_text"]]
    gen.pad_token_id = ids["pad"]

    model.save_pretrained(out)
    processor.save_pretrained(out)
    write_hub_layout(out, family)  # as the released checkpoints are laid out (vLLM loads only that)
    marker = {
        "builder": "adamllm.backbones.tiny.build_tiny",
        "family": family,
        "size": size,
        "seed": seed,
        "num_parameters": count_parameters(model),
        "vocab_size": len(tokenizer),
        "model_type": config.model_type,
        "architecture": type(model).__name__,
    }
    if image_token is not None:
        marker["image_token"] = image_token
    if words:
        marker["words"] = list(dict.fromkeys(words))
    (out / MARKER_FILE).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out


#: Value given to Mllama's tanh gates (tanh(0.5) ~ 0.46), which transformers initialises to zero.
MLLAMA_GATE_VALUE = 0.5


def _open_gates(model) -> None:
    """Mllama's cross-attention (and tile-embedding) tanh gates start at exactly zero, so a
    freshly initialised model ignores its images completely and the vision tower gets no
    gradient. Released checkpoints have trained, non-zero gates; give the random model the same
    property by setting every zero scalar gate to `MLLAMA_GATE_VALUE`."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.rsplit(".", 1)[-1].endswith("gate") and param.numel() == 1 and not param.any():
                param.fill_(MLLAMA_GATE_VALUE)


def read_marker(path: str | os.PathLike) -> dict[str, Any] | None:
    """The ``adamllm_tiny.json`` of a checkpoint directory, or None for other checkpoints."""
    marker = Path(path) / MARKER_FILE
    if not marker.is_file():
        return None
    return json.loads(marker.read_text(encoding="utf-8"))


def count_parameters(model_or_dir) -> int:
    """Number of parameters of a model, or of the safetensors weights in a checkpoint directory
    (read from the file headers, without loading a model). Tied weights count once."""
    if isinstance(model_or_dir, (str, os.PathLike)):
        from safetensors import safe_open

        files = sorted(Path(model_or_dir).glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no .safetensors file in {model_or_dir}")
        total = 0
        for file in files:
            with safe_open(str(file), framework="pt") as handle:
                for name in handle.keys():
                    shape = handle.get_slice(name).get_shape()
                    n = 1
                    for dim in shape:
                        n *= dim
                    total += n
        return total
    seen: set[int] = set()
    total = 0
    for param in model_or_dir.parameters():
        if id(param) not in seen:
            seen.add(id(param))
            total += param.numel()
    return total


def count_image_tokens(processor, family: str, width: int, height: int) -> int:
    """How many image placeholder tokens one ``width`` x ``height`` image expands to in the text.

    (Mllama keeps one ``<|image|>`` token per image; its vision features reach the language
    model through cross-attention instead.)
    """
    from PIL import Image

    image = Image.new("RGB", (width, height), (128, 64, 32))
    token = TOKEN_ROLES[family]["image"]
    text = ("<|vision_start|><|image_pad|><|vision_end|>describe" if family in QWEN_FAMILIES
            else {"llava_next": "<image>\ndescribe", "mllama": "<|image|>describe"}[family])
    images = [[image]] if family == "mllama" else [image]
    batch = processor(images=images, text=[text], return_tensors="pt")
    token_id = processor.tokenizer.convert_tokens_to_ids(token)
    return int((batch["input_ids"] == token_id).sum())
