"""End to end, offline: `adamllm run` tune -> synthesize with the built-in `adamllm` synthesizer.

A tiny random Qwen2-VL is tuned on seed data in the public layouts, and the tuned model writes
(mostly empty, it is random) continuations for the example domain's pairs and for a pretty-printed
JSON-array pairs file. Every file of both stages is written and the counts add up.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from adamllm.testing.data import write_pairs, write_seed_folder


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("pairs", ["domain", "json_array"])
def test_tune_then_synthesize_writes_every_file(tmp_path, pairs):
    write_seed_folder(tmp_path / "seed")
    if pairs == "domain":  # the example domain's declared source (4 packaged pairs)
        source = "domain: {type: shapes}\ndata: {tune: seed}\n"
    else:
        write_pairs(tmp_path / "pairs", n=3)  # pairs/image_caption_pairs.json, a pretty-printed array
        source = "data: {tune: seed, synthesize: pairs/image_caption_pairs.json}\n"
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: out\nstages: [tune, synthesize]\n" + source +
                      "synthesizer: {type: adamllm, max_new_tokens: 8, batch_size: 2,\n"
                      "              model: {type: qwen2_vl, model: synth, tiny: tiny, max_length: 512}}\n"
                      "trainer: {type: sft, max_steps: 2, batch_size: 2, learning_rate: 0.001}\n")
    result = run_cli("run", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out"
    assert (out / "tune" / "model" / "model.safetensors").exists()
    assert len((out / "tune" / "seed_conversations.jsonl").read_text().splitlines()) == 3
    stats = json.loads((out / "synthesize" / "stats.json").read_text())
    n = 4 if pairs == "domain" else 3
    assert stats["pairs_read"] == n and stats["pairs"] == n
    assert stats["triplets"] + stats["no_triplet"] == n
    assert stats["generated_tokens"] > 0 and stats["tokens_per_s"] is not None
    handled = [json.loads(line)["id"] for line in (out / "synthesize" / "_progress.jsonl").read_text().splitlines()]
    assert len(handled) == len(set(handled)) == n
    assert (out / "synthesize" / "triplets.jsonl").exists()
    again = run_cli("run", str(config))
    assert again.stdout.count("already done") == 2, again.stdout
