"""Padding-free training batches: a batch's samples packed end to end into one row.

A padded batch of ``n`` samples computes every layer over ``n × longest`` positions and builds a
dense padding mask for its attention; a packed row holds exactly the samples' tokens and needs no
mask. Packing is only correct if no token sees another sample and positions restart per sample:

* ``collate_packed`` (adapter) builds the row, position ids that restart at 0 for every sample
  (for Qwen2-VL the sample's own M-RoPE positions, with the text positions as a fourth row, the
  convention transformers uses for packed Qwen2-VL input) and labels that ignore the first token of
  every sample, so no sample is trained to predict the next sample's start;
* the ``adamllm_packed`` attention implementation, enabled on the language model only for the
  duration of training by ``packed_attention``, reads the sample boundaries from those position
  ids (every 0 starts a sample) and runs causal attention on each sample separately; its mask
  function builds no mask at all for a packed row.

Families whose text attends to images through cross-attention (Mllama) are not packed: a packed
row would have every token cross-attend to every packed sample's image tiles.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

IMPLEMENTATION = "adamllm_packed"
_registered = False


def segment_lengths(position_ids: torch.Tensor) -> list[int]:
    """Lengths of the packed samples of a one-row ``(1, length)`` position-id tensor: a sample
    starts at every position 0."""
    row = position_ids.reshape(-1)
    starts = (row == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        raise ValueError("packed position ids must start at 0")
    return [end - start for start, end in zip(starts, starts[1:] + [row.shape[0]])]


def packed_attention_forward(module, query, key, value, attention_mask, position_ids=None, **kwargs):
    """Causal attention within each packed sample; anything that is not a packed row (a padding
    mask, no position ids, more than one row) goes to transformers' SDPA unchanged."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if attention_mask is not None or position_ids is None or query.shape[0] != 1 or query.shape[2] == 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    sizes = segment_lengths(position_ids)
    if len(sizes) == 1:
        return sdpa_attention_forward(module, query, key, value, None, **kwargs)
    # split, not slicing: the backward of a split is one concatenation, while every slice's
    # backward writes a zero-filled tensor of the whole row
    outputs = [sdpa_attention_forward(module, q, k, v, None, **kwargs)[0]
               for q, k, v in zip(query.split(sizes, dim=2), key.split(sizes, dim=2), value.split(sizes, dim=2))]
    return torch.cat(outputs, dim=1), None


def packed_attention_mask(*args, attention_mask=None, **kwargs):
    """No mask for a packed row (the attention function keeps samples apart); SDPA's mask for an
    ordinary padded batch."""
    from transformers.masking_utils import sdpa_mask

    if attention_mask is None:
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def register() -> None:
    """Make ``adamllm_packed`` known to transformers (idempotent)."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface, AttentionMaskInterface

    AttentionInterface.register(IMPLEMENTATION, packed_attention_forward)
    AttentionMaskInterface.register(IMPLEMENTATION, packed_attention_mask)
    _registered = True


def _text_config_key(model) -> str | None:
    sub_configs = getattr(model.config, "sub_configs", {}) or {}
    return "text_config" if "text_config" in sub_configs else None


@contextlib.contextmanager
def packed_attention(model) -> Iterator[None]:
    """Run ``model``'s language model with ``adamllm_packed`` attention inside the block, and put
    the previous implementation back afterwards (also after an error), so saved configs and later
    generation never see it. ``model`` is the ``*ForConditionalGeneration`` module."""
    register()
    key = _text_config_key(model)
    text_config = getattr(model.config, key) if key else model.config
    previous = text_config._attn_implementation
    if previous not in (None, "sdpa", "eager"):  # flash-attention kernels handle packed position ids themselves
        yield
        return
    model.set_attn_implementation({key: IMPLEMENTATION} if key else IMPLEMENTATION)
    try:
        yield
    finally:
        model.set_attn_implementation({key: previous or "sdpa"} if key else previous or "sdpa")
