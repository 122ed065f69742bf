"""The train stage through `adamllm run`: a config with a tiny backbone built on first use."""
import json
import subprocess
import sys
from pathlib import Path

from adamllm.testing.data import write_mix

PRESETS = sorted((Path(__file__).resolve().parents[2] / "examples" / "presets").glob("*.yaml"))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True, timeout=600)


def test_run_train_stage_from_config_then_skip_then_force(tmp_path):
    write_mix(tmp_path / "data", n=8)
    config = tmp_path / "run.yaml"
    config.write_text(
        "output_dir: out\nseed: 1\nstages: [train]\n"
        "backbone: {type: qwen2_vl, model: base, tiny: tiny}\n"
        "trainer: {type: sft, batch_size: 4, max_steps: 3, learning_rate: 0.003, save_every: 2}\n"
        "data: {train: data/mix.jsonl}\n")
    first = run_cli("run", str(config))
    assert first.returncode == 0, first.stderr[-2000:]
    assert (tmp_path / "base" / "model.safetensors").exists()  # built on first use, next to the config
    out = tmp_path / "out" / "train"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["samples"] == 8
    assert json.loads((out / "run_info.json").read_text())["base_model"] == str(tmp_path / "base")
    assert (out / "model" / "model.safetensors").exists() and (out / "checkpoints" / "step-2").exists()
    again = run_cli("run", str(config))
    assert "already done" in again.stdout
    forced = run_cli("run", str(config), "--force")
    assert forced.returncode == 0 and json.loads((out / "summary.json").read_text())["resumed_from"] is None


def test_train_stage_without_data_says_what_to_do(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: out\nstages: [train]\nbackbone: {type: qwen2_vl, model: base, tiny: tiny}\n"
                      "trainer: {type: sft}\n")
    result = run_cli("run", str(config))
    assert result.returncode == 1 and "set data.train in the config" in result.stderr


def test_presets_validate():
    assert len(PRESETS) == 3
    for preset in PRESETS:
        result = run_cli("config", "validate", str(preset))
        assert result.returncode == 0, result.stderr
