"""The LLaVA-1.5 adapter: everything shared lives in ``VisionLanguageAdapter``; a family says
where its modules are, which token stands for an image, how to load its processor and how to
batch its image tensors."""
from __future__ import annotations

import json
from typing import Sequence

import torch
from transformers import AutoTokenizer, LlavaProcessor
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from adamllm.backbones.adapter import VisionLanguageAdapter, local_checkpoint


class LlavaAdapter(VisionLanguageAdapter):
    family = "llava"
    image_token = "<image>"
    end_of_text_token = "<|end_of_text|>"
    supports_packing = True  # a Llama LM with self-attention only: the contract suite checks it
    group_prefixes = {
        "vision": ("model.vision_tower",),
        "projector": ("model.multi_modal_projector",),
        "language": ("model.language_model", "lm_head"),
    }

    def _load_processor(self):
        # Built from its parts with the PIL image processor, so no torchvision is needed.
        path = local_checkpoint(self.config.model, self.config.revision)
        saved = json.loads((path / "processor_config.json").read_text())
        template = path / "chat_template.jinja"
        return LlavaProcessor(
            image_processor=CLIPImageProcessorPil.from_pretrained(path),
            tokenizer=AutoTokenizer.from_pretrained(path),
            patch_size=saved.get("patch_size"),
            vision_feature_select_strategy=saved.get("vision_feature_select_strategy"),
            num_additional_image_tokens=saved.get("num_additional_image_tokens", 0),
            chat_template=template.read_text() if template.exists() else None,
        )

    def consumed_image_tokens(self, sample: dict) -> int:
        # every image is resized to one square: (image_size / patch_size)^2 patch features
        vision = self.model.config.vision_config
        per_image = (vision.image_size // vision.patch_size) ** 2
        return per_image * (sample["pixel_values"].shape[0] if "pixel_values" in sample else 0)

    def _collate_images(self, samples: Sequence[dict], padding_side: str) -> dict:
        images = [s["pixel_values"] for s in samples if "pixel_values" in s]
        return {"pixel_values": torch.cat(images)} if images else {}
