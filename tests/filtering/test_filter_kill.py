"""Kill test of the filter stage: SIGKILL ``adamllm run`` while the consistency filter is writing
verdicts, run again: the verdicts file is byte-identical to an uninterrupted run's, no duplicate id.

The judge is a random ``small`` tiny causal LM with a prompt file ending in the triplet's fields
(so each triplet gets its own junk text), one triplet per batch through the padded engine (no
per-call setup cost), so the stage runs for seconds and the kill lands after some verdicts and
before the last.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

N_TRIPLETS = 40
CONFIG = """\
output_dir: {out}
stages: [filter]
data: {{filter: {triplets}}}
filter: {{type: consistency, engine: engine, batch_size: 1, prompt: {prompt}, model: {{type: causal_lm, model: {judge}}}}}
"""
WORDS = "red green blue square circle cell tissue soup bread egg left right large small bright dark".split()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from adamllm.backbones.tiny import build_tiny

    root = tmp_path_factory.mktemp("filter_kill")
    judge = build_tiny("causal_lm", root / "judge", size="small", seed=0)
    triplets = root / "triplets.jsonl"
    with triplets.open("w") as handle:
        for i in range(N_TRIPLETS):
            word = WORDS[i % len(WORDS)]
            handle.write(json.dumps({"id": f"t{i:02d}", "image": "x.png", "instruction": f"What is {word} {i}?",
                                     "precise": f"{word} {WORDS[(i * 7) % len(WORDS)]}",
                                     "informative": f"The picture shows {word} things, {i} of them."}) + "\n")
    prompt = root / "judge.txt"
    prompt.write_text(" ".join(WORDS) * 20 + "\n{instruction}\n{informative}\n{precise}\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return root, judge, triplets, prompt, env


def write_config(root: Path, name: str, judge: Path, triplets: Path, prompt: Path) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(CONFIG.format(out=root / name, triplets=triplets, prompt=prompt, judge=judge))
    return path


def command(config: Path) -> list[str]:
    return [sys.executable, "-m", "adamllm.cli", "run", str(config)]


def verdict_lines(out: Path) -> int:
    try:
        return (out / "filter" / "verdicts.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_after_some_verdicts(config: Path, out: Path, env: dict, at_least: int = 3) -> int:
    """Start the run, SIGKILL it once ``at_least`` verdicts are on disk; the count at the kill
    (0 when the run ended first)."""
    process = subprocess.Popen(command(config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while process.poll() is None and verdict_lines(out) < at_least and time.time() < deadline:
        time.sleep(0.005)
    if process.poll() is not None:
        return 0
    process.send_signal(signal.SIGKILL)
    process.wait()
    return verdict_lines(out)


@pytest.mark.slow  # three `adamllm run` subprocesses
def test_killed_filter_resumes_to_the_uninterrupted_verdicts(setup):
    root, judge, triplets, prompt, env = setup
    reference = subprocess.run(command(write_config(root, "reference", judge, triplets, prompt)),
                               capture_output=True, text=True, env=env, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]
    expected = (root / "reference" / "filter" / "verdicts.jsonl").read_bytes()
    records = [json.loads(line) for line in expected.decode().splitlines()]
    assert [r["id"] for r in records] == [f"t{i:02d}" for i in range(N_TRIPLETS)]
    assert len({r["raw"] for r in records}) > 1  # triplets get different texts: order matters

    config, out = write_config(root, "killed", judge, triplets, prompt), root / "killed"
    written = kill_after_some_verdicts(config, out, env)
    assert 3 <= written < N_TRIPLETS, written  # killed mid-stage
    assert not (out / "filter" / "_done.json").exists()

    resumed = subprocess.run(command(config), capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    data = (out / "filter" / "verdicts.jsonl").read_bytes()
    assert data == expected
    ids = [json.loads(line)["id"] for line in data.decode().splitlines()]
    assert len(ids) == len(set(ids)) == N_TRIPLETS
    stats = json.loads((out / "filter" / "stats.json").read_text())
    assert stats["triplets"] == N_TRIPLETS and stats["judged"] == N_TRIPLETS - written
