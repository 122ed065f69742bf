"""Data-parallel synthesize and filter under ``torchrun`` (two CPU processes, gloo): each process
takes its share, the main process merges by id in input order, and the merged files are
byte-identical to a single-process run's, from scratch and when resuming a single-process run
that was interrupted."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adamllm.testing.parallel import EVALUATE_FILES, components_env, data_project, evaluate_project, read_files

FILES = ("synthesize/triplets.jsonl", "synthesize/_progress.jsonl", "filter/verdicts.jsonl")
QUICKSTART_BENCHMARK = Path(__file__).parents[2] / "examples" / "quickstart" / "benchmark"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return components_env(tmp_path_factory.mktemp("site"))


def _run(env: dict, config: Path, processes: int) -> subprocess.CompletedProcess:
    if processes == 1:
        command = [sys.executable, "-m", "adamllm.cli", "run", str(config)]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                   "--standalone", "-m", "adamllm.cli", "run", str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=config.parent)


def _read(out: Path) -> dict:
    return {name: (out / name).read_bytes() for name in FILES}


def test_two_processes_write_what_one_process_writes(tmp_path, env):
    config = data_project(tmp_path)  # the same folder for both runs: records hold absolute image paths
    ran = _run(env, config, 1)
    assert ran.returncode == 0, ran.stderr[-3000:]
    one = _read(tmp_path / "out")
    one_stats = {stage: json.loads((tmp_path / "out" / stage / "stats.json").read_text())
                 for stage in ("synthesize", "filter")}
    shutil.rmtree(tmp_path / "out")
    ran = _run(env, config, 2)
    assert ran.returncode == 0, ran.stderr[-3000:]

    two = tmp_path / "out"
    assert _read(two) == one
    assert len(one["synthesize/_progress.jsonl"].splitlines()) == 10  # 12 records: 1 repeat, 1 bad image
    for stage in ("synthesize", "filter"):
        assert not list((two / stage).glob("*.rank*")), "shards are merged away"
    rejected = [json.loads(line) for line in (two / "synthesize" / "rejected.jsonl").read_text().splitlines()]
    assert sorted(r["kind"] for r in rejected) == ["bad_image", "duplicate_id"]
    stats = json.loads((two / "synthesize" / "stats.json").read_text())
    assert stats["num_processes"] == 2 and stats["rejected"] == 2
    # the main process took positions 0, 2, ..., 10 of the 11 distinct pairs; pair 4's image is bad
    main = stats["per_process"][0]["this_run"]
    assert main["triplets"] + main.get("no_triplet", 0) == 5
    # the components' counters cover both shares: they add up to the one-process run's
    assert stats["this_run"] == one_stats["synthesize"]["this_run"]
    for stage in ("synthesize", "filter"):
        merged = json.loads((two / stage / "stats.json").read_text())
        counters = {k: v for k, v in one_stats[stage].items() if isinstance(v, int) and not isinstance(v, bool)
                    and k != "num_processes"}
        assert counters and {k: merged[k] for k in counters} == counters, stage
    assert json.loads((two / "filter" / "stats.json").read_text())["triplets"] == 10


def test_two_processes_resume_an_interrupted_single_process_run(tmp_path, env):
    config = data_project(tmp_path / "one")
    assert _run(env, config, 1).returncode == 0
    out = tmp_path / "one" / "out"
    expected = _read(out)
    # as if the single-process run had been killed after 3 pairs: markers say "running"
    shutil.rmtree(out / "filter")
    synth = out / "synthesize"
    for name in ("triplets.jsonl", "_progress.jsonl"):
        lines = (synth / name).read_text().splitlines(keepends=True)
        keep = 3 if name == "_progress.jsonl" else sum(
            json.loads(p)["triplet"] for p in (synth / "_progress.jsonl").read_text().splitlines()[:3])
        (synth / name).write_text("".join(lines[:keep]))
    done = json.loads((synth / "_done.json").read_text())
    (synth / "_running.json").write_text(json.dumps(done["fingerprint"]))
    (synth / "_done.json").unlink()

    ran = _run(env, config, 2)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "[synthesize] resuming" in ran.stdout
    assert _read(out) == expected
    assert json.loads((synth / "stats.json").read_text())["this_run"]["already_done"] == 3


def test_component_stats_of_the_processes_are_summed_where_they_count():
    from adamllm.sharding import merge_stats

    main = {"pairs": 5, "parse_error": 1, "tokens_per_s": 80.5, "profile": "released", "examples": ["a"],
            "this_run": {"triplets": 4}, "flag": True}
    other = {"pairs": 6, "parse_error": 0, "tokens_per_s": 75.0, "profile": "released", "examples": ["b", "c"],
             "this_run": {"triplets": 5, "no_triplet": 1}, "flag": True}
    merged = merge_stats([main, other])
    assert merged == {"pairs": 11, "parse_error": 1, "profile": "released", "examples": ["a", "b", "c"],
                      "this_run": {"triplets": 9, "no_triplet": 1}, "flag": True, "per_process": [main, other]}
    assert merge_stats([main]) == main  # one process: its stats as they are


def test_two_processes_evaluate_what_one_process_evaluates(tmp_path, env):
    """The evaluate stage splits its samples as the data stages do (``adamllm.distributed.World``)
    and merges its shards the same way: the predictions file, the rejected samples and the scores of
    two processes equal one process's, byte for byte."""
    from adamllm.backbones.tiny import build_tiny

    config = evaluate_project(tmp_path, QUICKSTART_BENCHMARK, build_tiny("qwen2_vl", tmp_path / "model", size="tiny"))
    files = EVALUATE_FILES

    ran = _run(env, config, 1)
    assert ran.returncode == 0, ran.stderr[-3000:]
    one = read_files(tmp_path / "out", files)
    one_report = json.loads((tmp_path / "out" / "evaluate" / "report.json").read_text())
    shutil.rmtree(tmp_path / "out")
    ran = _run(env, config, 2)
    assert ran.returncode == 0, ran.stderr[-3000:]

    assert read_files(tmp_path / "out", files) == one
    assert len(one["evaluate/vqa/predictions.jsonl"].splitlines()) == 9
    rejected = [json.loads(line) for line in one["evaluate/vqa/rejected.jsonl"].splitlines()]
    assert len(rejected) == 1 and rejected[0]["where"].endswith("test.jsonl:10"), rejected
    report = json.loads((tmp_path / "out" / "evaluate" / "report.json").read_text())
    assert report["num_processes"] == 2 and one_report["num_processes"] == 1
    assert report["benchmarks"]["vqa"]["scores"] == one_report["benchmarks"]["vqa"]["scores"]
    assert not list((tmp_path / "out" / "evaluate" / "vqa").glob("*.rank*")), "shards are merged away"
