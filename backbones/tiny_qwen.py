"""The Qwen-VL part of the tiny builders: shapes and model configs of Qwen2-VL, Qwen2.5-VL and Qwen3-VL.

The three share the tokenizer (ChatML special tokens), the image processor (Qwen2-VL's, with
``min_pixels``/``max_pixels``) and the M-RoPE layout of their language model; they differ in the
vision tower (Qwen2.5-VL: RMSNorm, SwiGLU and window attention with a few full-attention blocks;
Qwen3-VL: learned position embeddings, 16 px patches and "deepstack" mergers that add features of
intermediate vision layers to the first language-model layers) and in the rotary layout (Qwen3-VL
interleaves the temporal / height / width frequencies instead of giving each a contiguous block).
`adamllm.backbones.tiny` merges `QWEN_FAMILY_SPECS` into its table and calls `qwen_model_config`.
"""
from __future__ import annotations

from typing import Any

QWEN_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")

# 28*28 .. 56*56 pixels with 28 px tokens: 1 to 4 image tokens per image
_TINY_28 = {"min_pixels": 28 * 28, "max_pixels": 56 * 56, "patch_size": 14, "temporal_patch_size": 2,
            "merge_size": 2}
# up to 168*168 pixels: a 224 px image -> 168x168 -> 6x6 = 36 image tokens
_SMALL_28 = {"min_pixels": 56 * 56, "max_pixels": 168 * 168, "patch_size": 14, "temporal_patch_size": 2,
             "merge_size": 2}
_HALF = [0.5, 0.5, 0.5]  # Qwen3-VL normalises with mean = std = 0.5

#: Per (family, size): vision tower, image processor and the M-RoPE sections of the language model.
QWEN_FAMILY_SPECS: dict[tuple[str, str], dict[str, Any]] = {
    ("qwen2_vl", "tiny"): {
        # head_dim 16 -> mrope_section sums to 8
        "mrope_section": [2, 3, 3],
        "vision": {"depth": 2, "embed_dim": 32, "num_heads": 2, "mlp_ratio": 2, "patch_size": 14,
                   "spatial_merge_size": 2, "temporal_patch_size": 2},
        "image_processor": dict(_TINY_28),
    },
    ("qwen2_vl", "small"): {
        # head_dim 64 -> mrope_section sums to 32 (Qwen2-VL: [16, 24, 24] for head_dim 128)
        "mrope_section": [8, 12, 12],
        "vision": {"depth": 4, "embed_dim": 128, "num_heads": 4, "mlp_ratio": 4, "patch_size": 14,
                   "spatial_merge_size": 2, "temporal_patch_size": 2},
        "image_processor": dict(_SMALL_28),
    },
    ("qwen2_vl", "2b"): {
        # Qwen2-VL-2B: head_dim 128, its vision tower (665 M parameters; 2,208,985,600 in all, as the real model) and its image processor
        "mrope_section": [16, 24, 24],
        "vision": {"depth": 32, "embed_dim": 1280, "num_heads": 16, "mlp_ratio": 4, "patch_size": 14,
                   "spatial_merge_size": 2, "temporal_patch_size": 2},
        "image_processor": {"min_pixels": 56 * 56, "max_pixels": 28 * 28 * 1280, "patch_size": 14,
                            "temporal_patch_size": 2, "merge_size": 2},
    },
    ("qwen2_5_vl", "tiny"): {
        "mrope_section": [2, 3, 3],
        # window 28 px = one merged token per window in block 0; block 1 attends to the whole image
        "vision": {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "patch_size": 14,
                   "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 28,
                   "fullatt_block_indexes": [1], "tokens_per_second": 2},
        "image_processor": dict(_TINY_28),
    },
    ("qwen2_5_vl", "small"): {
        "mrope_section": [8, 12, 12],
        "vision": {"depth": 4, "hidden_size": 128, "intermediate_size": 256, "num_heads": 4, "patch_size": 14,
                   "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
                   "fullatt_block_indexes": [3], "tokens_per_second": 2},
        "image_processor": dict(_SMALL_28),
    },
    ("qwen3_vl", "tiny"): {
        # head_dim 16 -> 8 frequency pairs, interleaved: height 1, 4; width 2, 5; time the other 4
        # (Qwen3-VL: [24, 20, 20] for head_dim 128)
        "mrope_section": [4, 2, 2],
        "vision": {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "patch_size": 16,
                   "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 64,
                   "deepstack_visual_indexes": [0]},
        # 32*32 .. 64*64 pixels with 32 px tokens: 1 to 4 image tokens per image
        "image_processor": {"min_pixels": 32 * 32, "max_pixels": 64 * 64, "patch_size": 16,
                            "temporal_patch_size": 2, "merge_size": 2, "image_mean": _HALF, "image_std": _HALF},
    },
    ("qwen3_vl", "small"): {
        "mrope_section": [12, 10, 10],
        "vision": {"depth": 4, "hidden_size": 128, "intermediate_size": 256, "num_heads": 4, "patch_size": 16,
                   "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 144,
                   "deepstack_visual_indexes": [1, 2]},
        # up to 192*192 pixels: a 224 px image -> 192x192 -> 6x6 = 36 image tokens
        "image_processor": {"min_pixels": 64 * 64, "max_pixels": 192 * 192, "patch_size": 16,
                            "temporal_patch_size": 2, "merge_size": 2, "image_mean": _HALF, "image_std": _HALF},
    },
}


def qwen_model_config(family: str, spec: dict[str, Any], text: dict[str, Any], tokenizer):
    """The transformers config of a tiny Qwen-VL model; ``text`` holds the language-model shapes and
    the bos/eos/pad ids, ``spec`` the family's entry of the tiny table."""
    text = dict(text)
    vision = dict(spec["vision"])
    rope = {"rope_type": "default", "mrope_section": list(spec["mrope_section"])}
    if family == "qwen2_vl":
        from transformers import Qwen2VLConfig as config_class

        rope["rope_theta"] = 1_000_000.0
        text["max_window_layers"] = text["num_hidden_layers"]
        vision["hidden_size"] = text["hidden_size"]  # Qwen2-VL: the merger's output width
    elif family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig as config_class

        rope["rope_theta"] = 1_000_000.0
        text["max_window_layers"] = text["num_hidden_layers"]
        vision["out_hidden_size"] = text["hidden_size"]
    elif family == "qwen3_vl":
        from transformers import Qwen3VLConfig as config_class

        rope.update(rope_theta=5_000_000.0, mrope_interleaved=True)
        text["head_dim"] = text["hidden_size"] // text["num_attention_heads"]  # the config's default is 128
        vision["out_hidden_size"] = text["hidden_size"]
    else:
        raise ValueError(f"{family!r} is not a Qwen-VL family; expected one of {QWEN_FAMILIES}")
    text["rope_parameters"] = rope
    return config_class(
        text_config=text, vision_config=vision,
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    )
