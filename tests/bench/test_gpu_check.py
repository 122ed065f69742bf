"""bench/gpu_check.py at tiny size on this CPU: the script a lent GPU runs, end to end."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_device_check_runs_at_tiny_size_and_reports_every_variant(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--size", "tiny", "--steps", "2",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["device"] == "cpu" and report["size"] == "tiny"
    results = report["results"]
    assert set(results) >= {"train full sdpa", "train full sdpa workers 0", "train lora sdpa", "generate batch 1",
                            "generate batch 16", "generate batch 64"}
    assert results["train full sdpa workers 0"]["dataloader_workers"] == 0
    assert results["train full sdpa workers 0"]["final_loss"] == results["train full sdpa"]["final_loss"]
    for name in ("train full sdpa", "train lora sdpa"):
        r = results[name]
        assert r["steps"] == 2 and r["tokens_per_s"] > 0 and math.isfinite(r["final_loss"])
        assert r["flops_per_token"] == (6 if "full" in name else 4) * r["parameters"]
    for batch in (1, 16, 64):
        r = results[f"generate batch {batch}"]
        assert r["batch"] == batch and r["new_tokens"] == batch * 8 and r["tokens_per_s"] > 0
    assert "| train full sdpa |" in done.stdout


def test_the_2b_size_has_qwen2_vl_2b_dimensions():
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    from adamllm.backbones.tiny import build_model_config

    config = build_model_config("qwen2_vl", "2b")
    with torch.device("meta"):  # no memory: shapes only
        model = Qwen2VLForConditionalGeneration(config)
    assert sum(p.numel() for p in model.parameters()) == 2_208_985_600  # Qwen2-VL-2B-Instruct's count
    text = config.get_text_config()
    assert (text.hidden_size, text.num_hidden_layers, text.vocab_size, text.tie_word_embeddings) == (1536, 28, 151_936, True)


def test_the_2b_size_is_refused_for_other_families(tmp_path):
    from click.testing import CliRunner

    from adamllm.cli import cli

    result = CliRunner().invoke(cli, ["tiny", "llava_next", str(tmp_path / "x"), "--size", "2b"])
    assert result.exit_code != 0 and "built for qwen2_vl only" in result.output
