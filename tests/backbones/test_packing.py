"""Training-time kernels: packed attention (sample boundaries from position ids, causal attention
per sample) and the Qwen-VL patch embeddings as a linear layer."""
import math

import pytest
import torch
from torch import nn

from adamllm.backbones.packing import IMPLEMENTATION, packed_attention, packed_attention_forward, segment_lengths


def test_segment_lengths_start_at_every_zero():
    assert segment_lengths(torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])) == [3, 2, 4]
    assert segment_lengths(torch.arange(5)[None]) == [5]
    with pytest.raises(ValueError, match="start at 0"):
        segment_lengths(torch.tensor([[3, 4, 0, 1]]))


class Attention(nn.Module):  # what transformers' attention modules expose to the interface
    is_causal = True
    num_key_value_groups = 2


def reference(query, key, value, sizes, scale):
    """Causal softmax attention computed by hand, one sample at a time (keys repeated for GQA)."""
    key = key.repeat_interleave(2, dim=1)
    value = value.repeat_interleave(2, dim=1)
    outputs, start = [], 0
    for size in sizes:
        q, k, v = (t[:, :, start:start + size] for t in (query, key, value))
        scores = q @ k.transpose(-1, -2) * scale
        scores = scores.masked_fill(torch.ones(size, size, dtype=torch.bool).triu(1), float("-inf"))
        outputs.append((scores.softmax(-1) @ v).transpose(1, 2))
        start += size
    return torch.cat(outputs, dim=1)


def test_packed_attention_equals_per_sample_causal_attention():
    torch.manual_seed(0)
    sizes = [5, 1, 7, 3]
    query = torch.randn(1, 4, sum(sizes), 8)
    key, value = torch.randn(1, 2, sum(sizes), 8), torch.randn(1, 2, sum(sizes), 8)
    positions = torch.cat([torch.arange(n) for n in sizes])[None]
    out, weights = packed_attention_forward(Attention(), query, key, value, None, position_ids=positions,
                                            scaling=1 / math.sqrt(8))
    assert weights is None and out.shape == (1, sum(sizes), 4, 8)
    assert torch.allclose(out, reference(query, key, value, sizes, 1 / math.sqrt(8)), atol=1e-5)
    # the same row without boundaries is one causal sequence: a different result
    whole, _ = packed_attention_forward(Attention(), query, key, value, None,
                                        position_ids=torch.arange(sum(sizes))[None], scaling=1 / math.sqrt(8))
    assert torch.allclose(whole, reference(query, key, value, [sum(sizes)], 1 / math.sqrt(8)), atol=1e-5)
    assert not torch.allclose(whole, out, atol=1e-3)


def test_padded_batches_go_to_sdpa_unchanged():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(1)
    query, key, value = torch.randn(2, 4, 6, 8), torch.randn(2, 2, 6, 8), torch.randn(2, 2, 6, 8)
    mask = torch.ones(2, 1, 6, 6, dtype=torch.bool).tril()
    mask[1, :, :, 4:] = False
    ours, _ = packed_attention_forward(Attention(), query, key, value, mask, position_ids=torch.arange(6)[None])
    theirs, _ = sdpa_attention_forward(Attention(), query, key, value, mask)
    assert torch.equal(ours, theirs)


def test_context_switches_the_language_model_only_and_restores_it(tiny_checkpoints):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_checkpoints("qwen2_vl"))
    text, vision = model.config.text_config, model.config.vision_config
    with pytest.raises(RuntimeError, match="boom"):
        with packed_attention(model):
            assert text._attn_implementation == IMPLEMENTATION
            assert vision._attn_implementation == "sdpa"
            raise RuntimeError("boom")
    assert (text._attn_implementation, vision._attn_implementation) == ("sdpa", "sdpa")


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_qwen_patch_embedding_as_linear_matches_the_convolution(tiny_checkpoints, family):
    from adamllm.backbones.families import ADAPTERS

    adapter = ADAPTERS[family].from_pretrained(tiny_checkpoints(family))
    embed = adapter.model.model.visual.patch_embed
    assert (embed.proj.bias is not None) is (family == "qwen3_vl")  # Qwen3-VL's convolution has a bias
    if embed.proj.bias is not None:
        with torch.no_grad():
            embed.proj.bias.normal_()  # initialised to zero: make leaving it out visible
    pixels = torch.randn(12, embed.in_channels * embed.temporal_patch_size * embed.patch_size ** 2)

    def run():
        embed.zero_grad(set_to_none=True)
        out = embed(pixels)
        (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
        grads = [embed.proj.weight.grad.clone()] + ([embed.proj.bias.grad.clone()] if embed.proj.bias is not None else [])
        return out.detach(), grads

    conv_out, conv_grads = run()
    with adapter.training_kernels(adapter.model):
        assert "forward" in vars(embed)
        linear_out, linear_grads = run()
    assert "forward" not in vars(embed)  # the module's own forward again
    assert torch.allclose(linear_out, conv_out, atol=1e-5)
    for linear_grad, conv_grad in zip(linear_grads, conv_grads, strict=True):
        # gradients reach ~3e3 here: equal up to float32 rounding of that scale
        assert (linear_grad - conv_grad).abs().max() <= 1e-6 * conv_grad.abs().max()
