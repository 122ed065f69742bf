"""``adamllm run --executor ray``: the same run on two Ray workers (a local cluster of this machine's
CPUs) writes the files of a one-process run, byte for byte, and a run whose driver is killed
(SIGKILL, with its whole process group) resumes to the uninterrupted result.

Runs only in the Ray lane (``make test-ray``)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from adamllm.testing.parallel import (DATA_FILES, EVALUATE_FILES, components_env, data_project,  # noqa: E402
                                     evaluate_project, read_files)

pytestmark = pytest.mark.ray
QUICKSTART_BENCHMARK = Path(__file__).parents[2] / "examples" / "quickstart" / "benchmark"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return components_env(tmp_path_factory.mktemp("site"))


def command(config: Path, ray_workers: int = 0) -> list[str]:
    extra = ["--executor", "ray", "--workers", str(ray_workers)] if ray_workers else []
    return [sys.executable, "-m", "adamllm.cli", "run", str(config), *extra]


def run(config: Path, env: dict, ray_workers: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run(command(config, ray_workers), capture_output=True, text=True, env=env, timeout=600,
                            cwd=config.parent)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    return result


def test_two_ray_workers_write_what_one_process_writes(tmp_path, env):
    from adamllm.backbones.tiny import build_tiny

    data = data_project(tmp_path)
    evaluate = evaluate_project(tmp_path, QUICKSTART_BENCHMARK, build_tiny("qwen2_vl", tmp_path / "model", size="tiny"))
    out = tmp_path / "out"
    run(data, env)
    run(evaluate, env)
    one = read_files(out, DATA_FILES + EVALUATE_FILES)
    one_scores = json.loads((out / "evaluate" / "report.json").read_text())["benchmarks"]["vqa"]["scores"]
    shutil.rmtree(out)

    ran = run(data, env, ray_workers=2)
    assert "[ray] 2 workers" in ran.stdout
    run(evaluate, env, ray_workers=2)
    assert read_files(out, DATA_FILES + EVALUATE_FILES) == one
    assert all(one.values()), [name for name, content in one.items() if not content]
    for stage in ("synthesize", "filter"):
        assert json.loads((out / stage / "stats.json").read_text())["num_processes"] == 2
    report = json.loads((out / "evaluate" / "report.json").read_text())
    assert report["num_processes"] == 2 and report["benchmarks"]["vqa"]["scores"] == one_scores
    assert not list(out.rglob("*.rank*")), "shards are merged away"


def test_a_killed_ray_run_resumes_to_the_uninterrupted_result(tmp_path, env):
    slow = "{type: testing_echo, batch_size: 2, seconds_per_batch: 0.25}"
    config = data_project(tmp_path, n=60, synthesizer=slow)
    out = tmp_path / "out"
    run(config, env)
    expected = read_files(out, DATA_FILES)
    shutil.rmtree(out)

    driver = subprocess.Popen(command(config, 2), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                              cwd=tmp_path, start_new_session=True)
    shards = lambda: sum(len(p.read_text().splitlines()) for p in (out / "synthesize").glob("triplets.rank*.jsonl"))  # noqa: E731
    deadline = time.time() + 240
    while time.time() < deadline and driver.poll() is None and (not (out / "synthesize").is_dir() or shards() < 10):
        time.sleep(0.2)
    assert driver.poll() is None, "the run ended before it could be killed"
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    killed_with = shards()
    assert 10 <= killed_with < 58, killed_with
    time.sleep(3)  # the cluster notices its driver is gone and stops the workers

    ran = run(config, env, ray_workers=2)
    assert "[synthesize] resuming" in ran.stdout
    assert read_files(out, DATA_FILES) == expected
    stats = json.loads((out / "synthesize" / "stats.json").read_text())
    assert stats["this_run"]["already_done"] >= 10


def test_a_failing_ray_run_says_why_in_one_line_and_does_not_hang(tmp_path, env):
    config = data_project(tmp_path, n=4)
    for image in (tmp_path / "pairs" / "images").iterdir():  # every pair's image is broken
        image.write_bytes(b"not a png")
    result = subprocess.run(command(config, 2), capture_output=True, text=True, env=env, timeout=300,
                            cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.returncode == 1 and len(errors) == 1, result.stderr[-3000:]
    assert errors[0].startswith("Error: rank ") and "found no usable image-caption pairs" in errors[0], errors
