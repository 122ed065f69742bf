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
    assert len(PRESETS) == 5  # the paper's four backbone settings and the paper evaluation preset
    for preset in PRESETS:
        result = run_cli("config", "validate", str(preset))
        assert result.returncode == 0, result.stderr


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def test_changed_learning_rate_reruns_train_and_evaluate_and_says_why(tmp_path):
    write_mix(tmp_path / "data", n=4)
    config = tmp_path / "run.yaml"
    text = ("output_dir: out\nseed: 1\nstages: [train, evaluate]\n"
            "backbone: {type: qwen2_vl, model: base, tiny: tiny}\n"
            "trainer: {type: sft, batch_size: 4, max_steps: 2, learning_rate: 0.003}\n"
            f"benchmarks: [{{type: slake, source: {FIXTURES / 'slake'}, limit: 2, max_new_tokens: 2}}]\n"
            "data: {train: data/mix.jsonl}\n")
    config.write_text(text)
    first = run_cli("run", str(config))
    assert first.returncode == 0, first.stderr[-2000:]
    weights = tmp_path / "out" / "train" / "model" / "model.safetensors"
    trained = weights.stat().st_mtime_ns
    unchanged = run_cli("run", str(config))
    assert unchanged.stdout.count("already done") == 2 and weights.stat().st_mtime_ns == trained

    config.write_text(text.replace("learning_rate: 0.003", "learning_rate: 0.002"))
    changed = run_cli("run", str(config))
    assert changed.returncode == 0, changed.stderr[-2000:]
    assert "[train] rerunning from scratch, it changed since it last ran: trainer.learning_rate: 0.003 -> 0.002" \
        in changed.stdout
    assert "[evaluate] rerunning from scratch" in changed.stdout and "stage 'train' ran before it" in changed.stdout
    assert weights.stat().st_mtime_ns != trained
    summary = json.loads((tmp_path / "out" / "train" / "summary.json").read_text())
    assert summary["resumed_from"] is None  # a changed config never resumes the old checkpoints

    # the same change given on the command line is validated like the file
    override = run_cli("run", str(config), "trainer.learning_rate=0.003")
    assert "trainer.learning_rate: 0.002 -> 0.003" in override.stdout
    bad = run_cli("run", str(config), "trainer.learning_rate=fast")
    assert bad.returncode == 1 and "trainer.learning_rate: Input should be a valid number" in bad.stderr


def test_a_streamed_train_stage_quarantines_a_bad_line_and_trains_on_the_rest(tmp_path):
    mix = write_mix(tmp_path / "data", n=6)
    mix.write_text(mix.read_text() + "{torn\n")
    config = tmp_path / "run.yaml"
    config.write_text(
        "output_dir: out\nstages: [train]\nbackbone: {type: qwen2_vl, model: base, tiny: tiny}\n"
        "trainer: {type: sft, batch_size: 7, max_steps: 2, learning_rate: 0.003, streaming: true}\n"
        "data: {train: data/mix.jsonl}\n")
    result = run_cli("run", str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "train" / "summary.json").read_text())
    assert summary["streaming"] and summary["records"] == 7 and summary["samples"] == 6
    assert summary["dropped"] == {"bad_record": 1} and summary["steps"] == 2
    rejected = [json.loads(line) for line in (tmp_path / "out" / "train" / "rejected.jsonl").read_text().splitlines()]
    assert [r["where"] for r in rejected] == [f"{mix}:7"] and "invalid JSON" in rejected[0]["reason"]
