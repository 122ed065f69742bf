"""Fixtures of the filter tests: tiny text-only judges, random or rigged to answer a fixed text.

A rigged judge is a real tiny ``LlamaForCausalLM`` checkpoint whose weights make greedy decoding
write ``first`` and then ``second`` whatever the prompt: embedding dimension 0 is 1 for every
token and dimension 1 marks the ``first`` token; no layer writes to those two dimensions (their
rows of ``o_proj`` and ``down_proj`` are zero), the final norm keeps only them, and the output head
scores ``first`` by (d0 - 2 d1) and ``second`` by d1 (everything else 0). After any prompt token
``first`` wins; right after ``first``, ``second`` does. So the filter's whole path (prompt,
tokenizer, batched generate, decoding, parsing) runs on a model whose answer is known.
"""
from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


def rig_judge(out_dir: Path, first: str = " Yes", second: str = ".") -> Path:
    """Write a tiny base causal LM that answers ``first`` + ``second`` (``second`` may be the EOS token)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adamllm.backbones.causal_lm import build_tiny_causal_lm

    build_tiny_causal_lm(out_dir, size="tiny", seed=0, chat_template=False)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    model = AutoModelForCausalLM.from_pretrained(out_dir)
    (first_id,) = tokenizer.encode(first, add_special_tokens=False)
    second_id = (tokenizer.convert_tokens_to_ids(second) if second in tokenizer.all_special_tokens
                 else tokenizer.encode(second, add_special_tokens=False)[0])
    with torch.no_grad():
        embed = model.model.embed_tokens.weight
        embed[:, 0] = 1.0
        embed[:, 1] = 0.0
        embed[first_id, 1] = 1.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[:2] = 0.0
            layer.mlp.down_proj.weight[:2] = 0.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[:2] = 1.0
        head = model.lm_head.weight
        head.zero_()
        head[first_id, 0], head[first_id, 1] = 1.0, -2.0
        head[second_id, 1] = 1.0
    model.save_pretrained(out_dir, safe_serialization=True)
    return Path(out_dir)


@pytest.fixture(scope="session")
def yes_dot_judge(tmp_path_factory) -> Path:
    """A judge that always writes " Yes." (legacy: other; normalized: yes)."""
    return rig_judge(tmp_path_factory.mktemp("judge_yes_dot"), " Yes", ".")


@pytest.fixture(scope="session")
def yes_judge(tmp_path_factory) -> Path:
    """A judge that always writes " Yes" and stops (its EOS token): yes under both parsings."""
    return rig_judge(tmp_path_factory.mktemp("judge_yes"), " Yes", "<|end_of_text|>")
