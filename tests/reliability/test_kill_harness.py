"""The kill harness: SIGKILL every stage at random points, several times, then finish the run.

The killed-and-resumed pipeline must end with exactly the files an uninterrupted run writes:
the same triplets, verdicts and mix (byte for byte, no duplicate, none lost), the same trained
weights (bit for bit: training resumes from its checkpoints) and the same predictions and scores.
Then the stale-resume case: training killed mid-run, its data and learning rate changed, must
start over (saying which fields changed) instead of resuming the old checkpoint.
"""
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adamllm.testing.data import write_pairs
from adamllm.testing.parallel import components_env

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
STAGES = ("synthesize", "filter", "compose", "train", "evaluate")
CONFIG = """\
output_dir: {out}
seed: 0
stages: [synthesize, filter, compose, train, evaluate]
data: {{synthesize: {pairs}}}
synthesizer: {{type: testing_echo, batch_size: 2, seconds_per_batch: 0.08}}
filter: {{type: testing_overlap, batch_size: 2, seconds_per_batch: 0.08}}
composer: {{type: testing_caption_task, seconds_per_example: 0.05}}
backbone: {{type: qwen2_vl, model: {model}, tiny: tiny, max_length: 512}}
trainer: {{type: sft, batch_size: 4, max_steps: 24, save_every: 1, learning_rate: {lr}}}
benchmarks: [{{type: slake, source: {bench}, limit: 8, max_new_tokens: 3, batch_size: 1}}]
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A site folder whose entry point registers adamllm.testing.components, as pip would."""
    return components_env(tmp_path_factory.mktemp("site"))


def write_config(folder: Path, name: str, pairs: Path, model: Path, lr: float = 0.003) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(CONFIG.format(out=folder / name, pairs=pairs, model=model, lr=lr, bench=FIXTURES / "slake"))
    return path


def command(config: Path) -> list[str]:
    return [sys.executable, "-m", "adamllm.cli", "run", str(config)]


def run_to_end(config: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(command(config), capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def kill_inside(stage: str, config: Path, out: Path, env: dict, rng: random.Random, window: float = 1.0) -> bool:
    """Start the run, SIGKILL it at a random moment within ``window`` seconds after ``stage``
    started; False if the stage finished first."""
    marker = out / stage / "_running.json"
    launched = time.time_ns()

    def started() -> bool:  # written by this process (an earlier, killed one leaves its own behind)
        try:
            return marker.stat().st_mtime_ns >= launched
        except FileNotFoundError:
            return False

    process = subprocess.Popen(command(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while not started() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, window))
    finished = process.poll() is not None
    if not finished:
        process.send_signal(signal.SIGKILL)
    process.wait()
    return not finished and not (out / stage / "_done.json").exists()


def outputs(out: Path) -> dict:
    from safetensors.torch import load_file

    files = {name: (out / name).read_bytes() for name in (
        "synthesize/triplets.jsonl", "filter/verdicts.jsonl", "compose/mix.jsonl")}
    weights = load_file(out / "train" / "model" / "model.safetensors")
    predictions = [json.loads(line) for line in (out / "evaluate" / "slake" / "predictions.jsonl").read_text().splitlines()]
    report = json.loads((out / "evaluate" / "report.json").read_text())
    return {"files": files, "weights": weights, "predictions": predictions,
            "scores": {k: v["scores"] for k, v in report["benchmarks"].items()}}


def test_killed_stages_resume_to_the_uninterrupted_result(tmp_path, env):
    pairs = write_pairs(tmp_path / "pairs", n=16, seed=5)
    model = tmp_path / "tiny_qwen"
    run_to_end(write_config(tmp_path, "reference", pairs, model), env)
    outputs_of_clean_run = outputs(tmp_path / "reference")

    config = write_config(tmp_path, "killed", pairs, model)
    out = tmp_path / "killed"
    rng = random.Random(1234)
    # twice inside every stage, at random moments within the first third of its uninterrupted time
    seconds = {stage: json.loads((tmp_path / "reference" / stage / "_done.json").read_text())["seconds"]
               for stage in STAGES}
    kills = {stage: sum(kill_inside(stage, config, out, env, rng, seconds[stage] / 3) for _ in range(2))
             for stage in STAGES}
    run_to_end(config, env)
    assert all(count >= 1 for count in kills.values()), (kills, seconds)  # every stage really was killed mid-run
    result = outputs(out)

    for name, data in outputs_of_clean_run["files"].items():
        assert result["files"][name] == data, name
        ids = [json.loads(line)["id"] for line in data.decode().splitlines()]
        assert len(ids) == len(set(ids)), name  # no duplicates
    assert result["weights"].keys() == outputs_of_clean_run["weights"].keys()
    for key, tensor in outputs_of_clean_run["weights"].items():
        assert result["weights"][key].equal(tensor), key
    assert result["predictions"] == outputs_of_clean_run["predictions"]
    assert result["scores"] == outputs_of_clean_run["scores"]


def killed_mid_training(tmp_path: Path, env: dict, n_pairs: int, seed: int) -> tuple[Path, Path, Path]:
    """A run at lr 0.003 killed inside its train stage (checkpoints on disk); (pairs, config, out)."""
    pairs = write_pairs(tmp_path / "pairs", n=n_pairs, seed=5)
    config = write_config(tmp_path, "run", pairs, tmp_path / "tiny_qwen", lr=0.003)
    out = tmp_path / "run"
    rng = random.Random(seed)
    while not kill_inside("train", config, out, env, rng):
        (out / "train" / "_done.json").unlink(missing_ok=True)
    return pairs, config, out


def test_stale_resume_starts_over_and_names_what_changed(tmp_path, env):
    pairs, config, out = killed_mid_training(tmp_path, env, n_pairs=16, seed=7)
    assert not (out / "train" / "_done.json").exists()
    records = json.loads(pairs.read_text())
    pairs.write_text(json.dumps(records[:-2], indent=2))  # the data changed...
    config.write_text(config.read_text().replace("learning_rate: 0.003", "learning_rate: 0.002"))  # ...and the lr
    result = run_to_end(config, env)
    assert "[synthesize] rerunning from scratch" in result.stdout and "changed" in result.stdout
    assert "[train] " in result.stdout and "stage 'synthesize' ran before it" in result.stdout
    summary = json.loads((out / "train" / "summary.json").read_text())
    assert summary["resumed_from"] is None and summary["completed"] and summary["steps"] == 24
    assert summary["samples"] == len(records) - 2
    info = json.loads((out / "train" / "run_info.json").read_text())
    assert info["config"]["learning_rate"] == 0.002


def test_stale_resume_with_only_the_trainer_changed_names_the_field(tmp_path, env):
    _, config, out = killed_mid_training(tmp_path, env, n_pairs=8, seed=3)
    config.write_text(config.read_text().replace("learning_rate: 0.003", "learning_rate: 0.002"))
    result = run_to_end(config, env)
    assert "[train] starting over: an interrupted run of it used other settings: " \
           "trainer.learning_rate: 0.003 -> 0.002" in result.stdout, result.stdout
    assert json.loads((out / "train" / "summary.json").read_text())["resumed_from"] is None
