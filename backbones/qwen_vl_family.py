"""The Qwen-VL families: Qwen2-VL, Qwen2.5-VL and Qwen3-VL, one adapter base for all three.

What they share is most of what an adapter does: images become a variable number of
``<|image_pad|>`` tokens set by a pixel budget (``min_pixels``/``max_pixels``); the language model
places them with multimodal rotary positions (M-RoPE: temporal, height and width position ids,
computed by the model's ``get_rope_index`` from ``mm_token_type_ids`` and ``image_grid_thw``);
the vision tower starts with a Conv3d patch embedding; ChatML turns. What differs is a few class
attributes: the family name, the checkpoint's ``model_type`` and where the projector lives
(Qwen3-VL's "deepstack" mergers, which feed intermediate vision features into the first
language-model layers, count as projector).

Packing (``packing.py``) is correct for all three: a packed sample's position ids are its own
M-RoPE positions, computed by the model itself on that sample alone (Qwen2.5-VL's time scaling
and Qwen3-VL's interleaved layout are the model's business, not ours), with the text positions as
a fourth row that tells the attention where samples start; Qwen3-VL's deepstack features are
added at the image-token positions of the row, in the order of its images, exactly as in a padded
batch. The contract suite's packed-vs-padded check proves it per family.

Evaluation settings (docs/backbones.md): the reference code prompts Qwen2-VL with the system
message "You are a helpful assistant." and an image budget of 50,176..1,003,520 pixels; adamllm
uses both for the three families when it evaluates, unless the backbone section sets a budget.
"""
from __future__ import annotations

import contextlib
import types
from typing import ClassVar, Iterator, Sequence

import torch

from .adapter import VisionLanguageAdapter, _pad, causal_lm
from .templates import DEFAULT_SYSTEM_MESSAGE

#: The reference code's image budget for Qwen2-VL evaluation: 224*224 and 1280*28*28 pixels.
REFERENCE_MIN_PIXELS = 224 * 224
REFERENCE_MAX_PIXELS = 1280 * 28 * 28


class QwenVLAdapter(VisionLanguageAdapter):
    """The shared Qwen-VL adapter; a family subclass sets ``family``, ``model_types`` and
    ``group_prefixes``."""

    supports_packing = True
    image_token = "<|image_pad|>"
    end_of_text_token = "<|endoftext|>"
    pixel_keys = ("pixel_values", "image_grid_thw")
    evaluation_system_message = DEFAULT_SYSTEM_MESSAGE
    #: The image budget used in evaluation when the backbone section sets neither bound.
    evaluation_pixel_budget: ClassVar[tuple[int, int]] = (REFERENCE_MIN_PIXELS, REFERENCE_MAX_PIXELS)
    _evaluating = False

    # -- the pixel budget ------------------------------------------------------------------
    def pixel_budget(self) -> tuple[int | None, int | None]:
        """``(min_pixels, max_pixels)`` in force: the backbone section's if it sets either, else
        in evaluation the reference budget, else ``(None, None)`` (the checkpoint's own)."""
        configured = (self.config.min_pixels, self.config.max_pixels)
        if configured != (None, None) or not self._evaluating:
            return configured
        return self.evaluation_pixel_budget

    def _apply_pixel_budget(self, image_processor) -> None:
        # transformers 5 keeps the pixel budget in ``size`` (shortest_edge/longest_edge = min/max pixels)
        low, high = self.pixel_budget()
        size = dict(image_processor.size or {})
        if low is not None:
            size["shortest_edge"] = low
        if high is not None:
            size["longest_edge"] = high
        image_processor.size = size

    def use_evaluation_settings(self) -> dict:
        """The base's, plus the image budget: from now on the reference one unless the backbone
        section sets one (applied to the processor now if it is loaded, else when it loads)."""
        self._evaluating = True
        if self._processor is not None:
            self._apply_pixel_budget(self._processor.image_processor)
        low, high = self.pixel_budget()
        return {"system_message": self.evaluation_system_message, "min_pixels": low, "max_pixels": high}

    # -- images and positions --------------------------------------------------------------
    def consumed_image_tokens(self, sample: dict) -> int | None:
        merge = self.model.config.vision_config.spatial_merge_size
        return int(sample["image_grid_thw"].prod(-1).sum()) // merge**2 if "image_grid_thw" in sample else 0

    def _positions(self, sample: dict) -> torch.Tensor:
        """``(4, 1, length)``: the text positions (which tell the attention where samples start),
        then the sample's own M-RoPE positions (temporal, height, width) from the model."""
        ids = sample["input_ids"][None]
        grid = sample.get("image_grid_thw")
        token_types = sample.get("mm_token_type_ids", torch.zeros_like(sample["input_ids"]))[None]
        base = causal_lm(self.model).model
        if grid is None:
            mrope = torch.arange(ids.shape[1]).expand(3, 1, -1)
        else:
            mrope, _ = base.get_rope_index(ids, image_grid_thw=grid, mm_token_type_ids=token_types)
        text = torch.arange(ids.shape[1])[None, None]
        return torch.cat([text, mrope.to(text.dtype)], dim=0)

    @contextlib.contextmanager
    def training_kernels(self, model) -> Iterator[None]:
        """The vision patch embedding as the matrix product it is: its Conv3d has kernel = stride
        = input size, i.e. one dot product per patch, and on CPU the convolution's backward takes
        about 3x as long as a linear layer's (28.7 against 9.1 ms for 864 patches, measured). Same
        weight (and bias, Qwen3-VL), same result up to float rounding."""
        embed = getattr(getattr(getattr(model, "model", None), "visual", None), "patch_embed", None)
        if embed is None or not isinstance(getattr(embed, "proj", None), torch.nn.Conv3d):
            yield
            return
        embed.forward = types.MethodType(_patch_embed_as_linear, embed)
        try:
            yield
        finally:
            del embed.forward  # back to the class's own forward

    def _collate_packed_images(self, samples: Sequence[dict]) -> dict:
        out = self._collate_images(samples, "right")
        if "mm_token_type_ids" in out:  # per token: concatenated like the ids, not padded
            out["mm_token_type_ids"] = torch.cat(
                [s.get("mm_token_type_ids", torch.zeros_like(s["input_ids"])) for s in samples])[None]
        return out

    def _collate_images(self, samples: Sequence[dict], padding_side: str) -> dict:
        out = {}
        if any("mm_token_type_ids" in s for s in samples):
            rows = [s.get("mm_token_type_ids", torch.zeros_like(s["input_ids"])) for s in samples]
            out["mm_token_type_ids"] = _pad(rows, 0, padding_side)
        with_images = [s for s in samples if "pixel_values" in s]
        if with_images:
            out["pixel_values"] = torch.cat([s["pixel_values"] for s in with_images])
            out["image_grid_thw"] = torch.cat([s["image_grid_thw"] for s in with_images])
        return out


def _patch_embed_as_linear(self, hidden_states: torch.Tensor) -> torch.Tensor:
    weight = self.proj.weight  # (embed_dim, channels, temporal, patch, patch)
    flat = hidden_states.reshape(-1, weight[0].numel()).to(weight.dtype)
    return torch.nn.functional.linear(flat, weight.reshape(weight.shape[0], -1), self.proj.bias)


_LANGUAGE = ("model.language_model", "lm_head")


class Qwen2VLAdapter(QwenVLAdapter):
    """Qwen2-VL (e.g. Qwen/Qwen2-VL-2B-Instruct)."""

    family = "qwen2_vl"
    model_types = ("qwen2_vl",)
    group_prefixes = {"vision": ("model.visual",), "projector": ("model.visual.merger",), "language": _LANGUAGE}


class Qwen2_5_VLAdapter(QwenVLAdapter):
    """Qwen2.5-VL (e.g. Qwen/Qwen2.5-VL-3B-Instruct): Qwen2-VL's interface; its vision tower uses
    window attention and its M-RoPE spaces video frames by time (still images are one frame)."""

    family = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    group_prefixes = {"vision": ("model.visual",), "projector": ("model.visual.merger",), "language": _LANGUAGE}


class Qwen3VLAdapter(QwenVLAdapter):
    """Qwen3-VL, the dense models (e.g. Qwen/Qwen3-VL-2B-Instruct; the MoE ones are refused):
    interleaved M-RoPE, 16 px patches, and deepstack mergers (projector group) that add vision
    features to the first language-model layers at the image tokens."""

    family = "qwen3_vl"
    model_types = ("qwen3_vl",)
    group_prefixes = {
        "vision": ("model.visual",),
        "projector": ("model.visual.merger", "model.visual.deepstack_merger_list"),
        "language": _LANGUAGE,
    }


QWEN_ADAPTERS = (Qwen2VLAdapter, Qwen2_5_VLAdapter, Qwen3VLAdapter)
