"""The built-in image-text families: what differs is the image placeholder, the processor call, how
image tensors batch, and where the vision tower / projector / language model live. The Qwen-VL
families (Qwen2-VL, Qwen2.5-VL, Qwen3-VL) share one base in ``qwen_vl_family``; they are
re-exported here, so ``adamllm.backbones.families:Qwen2VLAdapter`` keeps working."""
from __future__ import annotations

from typing import Sequence

import torch

from .adapter import VisionLanguageAdapter, pad_dim
from .qwen_vl_family import QWEN_ADAPTERS, Qwen2_5_VLAdapter, Qwen2VLAdapter, Qwen3VLAdapter, QwenVLAdapter

__all__ = ["ADAPTERS", "LlavaNextAdapter", "MllamaAdapter", "Qwen2VLAdapter", "Qwen2_5_VLAdapter",
           "Qwen3VLAdapter", "QwenVLAdapter"]


class LlavaNextAdapter(VisionLanguageAdapter):
    """LLaVA-NeXT / LLaVA-v1.6 (transformers format, Llama-3 chat). AnyRes tiles per image."""

    family = "llava_next"
    supports_packing = True
    default_image_token = "<image>"
    end_of_text_token = "<|end_of_text|>"
    pixel_keys = ("pixel_values", "image_sizes")
    group_prefixes = {
        "vision": ("model.vision_tower",),
        "projector": ("model.multi_modal_projector", "model.image_newline"),
        "language": ("model.language_model", "lm_head"),
    }

    def save(self, out_dir):
        """As any adapter saves, with the weights in the released checkpoints' key layout
        (``checkpoints.write_hub_layout``), which vLLM's loader needs."""
        from .checkpoints import write_hub_layout

        out = super().save(out_dir)
        write_hub_layout(out, self.family)
        return out

    @property
    def image_token(self) -> str:
        """The image token the checkpoint's processor declares (``processor.image_token``; the
        released synthesizer declares ``<|reserved_special_token_4|>``), else ``<image>``."""
        return getattr(self.processor, "image_token", None) or self.default_image_token

    def consumed_image_tokens(self, sample: dict) -> int | None:
        if "pixel_values" not in sample:
            return 0
        cfg = self.model.config
        with torch.no_grad():
            out = self.model.model.get_image_features(
                pixel_values=sample["pixel_values"], image_sizes=sample["image_sizes"],
                vision_feature_layer=cfg.vision_feature_layer,
                vision_feature_select_strategy=cfg.vision_feature_select_strategy)
        return sum(int(f.shape[0]) for f in out.pooler_output)

    def _collate_images(self, samples: Sequence[dict], padding_side: str) -> dict:
        with_images = [s for s in samples if "pixel_values" in s]
        if not with_images:
            return {}
        return {
            "pixel_values": torch.cat(pad_dim([s["pixel_values"] for s in with_images], 1)),
            "image_sizes": torch.cat([s["image_sizes"] for s in with_images]),
        }


class MllamaAdapter(VisionLanguageAdapter):
    """Llama-3.2-Vision. One ``<|image|>`` token per image; the text attends to image tiles through
    cross-attention layers, masked per token by ``cross_attention_mask``."""

    family = "mllama"
    image_token = "<|image|>"
    end_of_text_token = "<|end_of_text|>"
    pixel_keys = ("pixel_values", "aspect_ratio_ids", "aspect_ratio_mask")  # cross_attention_mask follows the text
    group_prefixes = {
        "vision": ("model.vision_model",),
        "projector": ("model.multi_modal_projector",),
        "language": ("model.language_model", "lm_head"),
    }

    def consumed_image_tokens(self, sample: dict) -> int | None:
        # one <|image|> token per image; the text cross-attends to that image's tiles
        return int(sample["pixel_values"].shape[1]) if "pixel_values" in sample else 0

    def _image_inputs(self, images: list) -> dict:
        return dict(self.processor.image_processor(images=[images], return_tensors="pt"))

    def _process(self, text: str, images: list) -> dict:
        return dict(self.processor(text=[text], images=[images] if images else None, add_special_tokens=False,
                                   return_tensors="pt"))

    def _collate_images(self, samples: Sequence[dict], padding_side: str) -> dict:
        with_images = [s for s in samples if "pixel_values" in s]
        if not with_images:
            return {}
        ref = with_images[0]
        n_images = max(s["pixel_values"].shape[1] for s in with_images)
        tiles = ref["pixel_values"].shape[2]
        width = max(s["input_ids"].shape[0] for s in samples)
        pixel_values, ratio_ids, ratio_mask, cross = [], [], [], []
        for s in samples:
            if "pixel_values" in s:
                pv, ids, mask, cam = s["pixel_values"], s["aspect_ratio_ids"], s["aspect_ratio_mask"], s["cross_attention_mask"]
            else:  # a text-only sample in a batch with images: no tile is attended
                pv = torch.zeros((1, 1) + tuple(ref["pixel_values"].shape[2:]), dtype=ref["pixel_values"].dtype)
                ids = torch.zeros((1, 1), dtype=ref["aspect_ratio_ids"].dtype)
                mask = torch.zeros((1, 1, tiles), dtype=ref["aspect_ratio_mask"].dtype)
                cam = torch.zeros((s["input_ids"].shape[0], 1, tiles), dtype=ref["cross_attention_mask"].dtype)
            pixel_values.append(pv)
            ratio_ids.append(ids)
            ratio_mask.append(mask)
            cam = pad_dim([cam, torch.zeros((1, n_images, tiles), dtype=cam.dtype)], 1)[0]
            pad = torch.zeros((width - cam.shape[0], n_images, tiles), dtype=cam.dtype)
            cross.append(torch.cat([cam, pad] if padding_side == "right" else [pad, cam]))
        return {
            "pixel_values": torch.cat(pad_dim(pixel_values, 1)),
            "aspect_ratio_ids": torch.cat(pad_dim(ratio_ids, 1)),
            "aspect_ratio_mask": torch.cat(pad_dim(ratio_mask, 1)),
            "cross_attention_mask": torch.stack(cross),
        }


ADAPTERS = {cls.family: cls for cls in (*QWEN_ADAPTERS, LlavaNextAdapter, MllamaAdapter)}
