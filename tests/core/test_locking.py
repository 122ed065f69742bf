"""One process per output folder (``adamllm.locking``), and temporary files no two writers share."""
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from adamllm.io import temp_path, write_jsonl
from adamllm.locking import LOCK_FILE, LockedError, lock_holder, output_lock
from adamllm.reports import write_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
HOLDER = ("import sys, time\nfrom adamllm.locking import output_lock\n"
          "with output_lock(sys.argv[1], command='adamllm run holder.yaml'):\n"
          "    print('locked', flush=True)\n    time.sleep(600)\n")


@pytest.fixture
def no_launcher(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def holder(tmp_path, no_launcher):
    """Another process holding the lock of ``tmp_path / "out"``."""
    folder = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        yield folder, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def adamllm(*args, cwd=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ADAMLLM_")
               and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          env=environ, cwd=cwd, timeout=300)


def test_lock_records_its_holder_and_refuses_a_second_taker(tmp_path, no_launcher):
    folder = tmp_path / "new" / "out"
    with output_lock(folder, command="adamllm run x.yaml") as path:
        assert path == folder / LOCK_FILE  # the folder is created
        holder = lock_holder(folder)
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert holder["command"] == "adamllm run x.yaml" and holder["started"]
        with pytest.raises(LockedError) as refused:  # a second open file, as another process would have
            with output_lock(folder):
                pass
        assert str(refused.value) == (f"{folder} is in use by pid {os.getpid()} on {socket.gethostname()} since "
                                      f"{holder['started']} (adamllm run x.yaml); wait for it or use another output folder")
    with output_lock(folder):  # released at the end of the block
        pass


def test_only_global_rank_zero_takes_the_lock(tmp_path, monkeypatch, no_launcher):
    with output_lock(tmp_path):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", "1")
        monkeypatch.setenv("LOCAL_RANK", "1")
        with output_lock(tmp_path) as path:  # the other ranks of the same job share the folder
            assert path is None
        monkeypatch.setenv("RANK", "0")
        monkeypatch.setenv("LOCAL_RANK", "0")
        with pytest.raises(LockedError):
            with output_lock(tmp_path):
                pass
        monkeypatch.setenv("WORLD_SIZE", "1")  # a single process with RANK set still locks
        with pytest.raises(LockedError):
            with output_lock(tmp_path):
                pass


def test_run_refuses_a_folder_in_use_and_a_killed_holder_frees_it(tmp_path, holder):
    folder, process = holder
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: out\nstages: [train]\nbackbone: {type: qwen2_vl, model: base, tiny: tiny}\n"
                      "trainer: {type: sft}\n")
    result = adamllm("run", str(config))
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"Error: {folder} is in use by pid {process.pid} on {socket.gethostname()} since ")
    assert line.endswith("(adamllm run holder.yaml); wait for it or use another output folder")
    process.send_signal(signal.SIGKILL)  # no clean-up at all: the kernel releases the lock
    process.wait(timeout=30)
    with output_lock(folder):
        pass
    after = adamllm("run", str(config))  # gets past the lock to the config's own problem
    assert after.returncode == 1 and "set data.train in the config" in after.stderr, after.stderr


def test_eval_refuses_an_out_folder_in_use(tmp_path, holder):
    folder, process = holder
    result = adamllm("eval", "--backbone", "qwen2_vl", "--model", str(tmp_path / "no-model"), "--benchmarks", "slake",
                     "--source", f"slake={FIXTURES / 'slake'}", "--limit", "1", "--quiet", "--out", str(folder))
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert f"{folder} is in use by pid {process.pid}" in line and "wait for it or use another output folder" in line
    assert not (folder / "slake").exists()  # nothing was written


def test_temporary_files_are_unique_and_next_to_their_target(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    first, second = temp_path(target), temp_path(target)
    assert first != second and first.parent == second.parent == tmp_path
    assert str(os.getpid()) in first.name and first.name.endswith(".tmp")
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append((Path(src), Path(dst))), real_replace(src, dst)))
    write_jsonl(tmp_path / "a.jsonl", [{"id": 1}])
    write_jsonl(tmp_path / "a.jsonl", [{"id": 2}])
    report = {"model": "m", "backbone": "b", "benchmarks": {}}
    write_report(report, tmp_path / "eval")
    write_report(report, tmp_path / "eval")
    temps = [src for src, _ in renamed]
    assert len(set(temps)) == len(temps) == 8  # every write its own name
    assert all(src.parent == dst.parent and src.name.startswith(f".{dst.name}.{os.getpid()}.") for src, dst in renamed)
    assert json.loads((tmp_path / "eval" / "report.json").read_text()) == report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "eval"]  # no temporary file left


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    def records():
        yield {"id": 1}
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        write_jsonl(tmp_path / "a.jsonl", records())
    assert list(tmp_path.iterdir()) == []
