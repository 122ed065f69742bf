"""Issue 21, guards that protect what a command did not create (cases 1, 2, 6, 17, 18, 20).

Each test runs the real ``adamllm`` command line in a subprocess and checks both what it says (one
``Error:`` line, exit 1) and that nothing it did not make was touched.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adamllm.locking import LOCK_FILE, LockedError, output_lock
from adamllm.testing.data import write_pairs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
HOLDER = ("import sys, time\nfrom adamllm.locking import output_lock\n"
          "with output_lock(sys.argv[1], command=sys.argv[2]):\n"
          "    print('locked', flush=True)\n    time.sleep(600)\n")


def adamllm(*args, cwd=None, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ADAMLLM_")
               and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", **env)
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          env=environ, cwd=cwd, timeout=300)


def error_line(result) -> str:
    """The one line an expected error prints (progress bars aside), asserting exit code 1."""
    assert result.returncode == 1, (result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    return line


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def hold():
    """``hold(folder, command)``: another process holding ``folder``'s lock until the test ends."""
    processes = []

    def start(folder, command="adamllm run holder.yaml"):
        process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), command], stdout=subprocess.PIPE,
                                   text=True, env={k: v for k, v in os.environ.items()
                                                   if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")})
        processes.append(process)
        assert process.stdout.readline().strip() == "locked"
        return process

    yield start
    for process in processes:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


@pytest.fixture
def run_config(tmp_path):
    write_pairs(tmp_path / "pairs", n=4)
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: out\nstages: [synthesize]\n"
                      "data: {synthesize: pairs/image_caption_pairs.json}\nsynthesizer: {type: rules}\n")
    return config


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A trained-looking run folder (a full fine-tune around a tiny checkpoint, a loss file)."""
    run = tmp_path_factory.mktemp("trained") / "OUT"
    made = adamllm("tiny", "qwen2_vl", str(run / "train" / "model"))
    assert made.returncode == 0, made.stderr
    (run / "train" / "run_info.json").write_text(json.dumps({"backbone": "qwen2_vl", "mode": "full",
                                                              "model_dir": "model"}))
    (run / "train" / "loss.jsonl").write_text('{"step": 1, "loss": 2.5}\n')
    return run


# case 1 ------------------------------------------------------------------------------------------

def test_preview_refuses_a_folder_it_did_not_make(run_config, tmp_path):
    user_file = tmp_path / "out-preview" / "important" / "labels.csv"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("id,label\n1,cat\n")
    refused = adamllm("run", str(run_config), "--preview", "2", cwd=tmp_path)
    line = error_line(refused)
    assert f"{tmp_path / 'out-preview'} is not empty and was not made by a preview" in line and "--force" in line
    assert user_file.read_text() == "id,label\n1,cat\n"
    assert sorted(p.name for p in (tmp_path / "out-preview").iterdir()) == ["important"]  # no lock file left either

    forced = adamllm("run", str(run_config), "--preview", "2", "--force", cwd=tmp_path)  # the user said so
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert not user_file.parent.exists()
    assert len((tmp_path / "out-preview" / "synthesize" / "triplets.jsonl").read_text().splitlines()) == 2
    again = adamllm("run", str(run_config), "--preview", "1", cwd=tmp_path)  # its own folder: emptied, rerun
    assert again.returncode == 0, again.stderr[-2000:]
    assert len((tmp_path / "out-preview" / "synthesize" / "triplets.jsonl").read_text().splitlines()) == 1


# case 2 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target, relation", [("OUT/train", "is inside"), ("OUT/exported", "is inside"),
                                              ("OUT", "is"), (".", "holds")])
def test_export_refuses_a_target_that_is_holds_or_is_inside_its_run(trained_run, target, relation):
    before = tree(trained_run)
    out = trained_run.parent / target
    result = adamllm("export", str(trained_run), str(out), "--force")
    line = error_line(result)
    assert line == (f"Error: refusing to write {out}: it {relation} this command's input {trained_run} "
                    f"(even with --force); give a folder outside it")
    assert tree(trained_run) == before  # checkpoints, run_info.json, loss file: all there, unchanged
    assert not (trained_run / "exported").exists()


def test_export_given_the_train_folder_refuses_the_run_around_it(trained_run):
    train = trained_run / "train"
    before = tree(trained_run)
    result = adamllm("export", str(train), str(trained_run), "--force")
    assert f"it holds this command's input {train}" in error_line(result)
    assert tree(trained_run) == before


# case 6 ------------------------------------------------------------------------------------------

def test_commands_writing_inside_a_locked_run_folder_are_refused_naming_the_holder(tmp_path, trained_run, hold):
    out = tmp_path / "OUT"
    holder = hold(out, "adamllm run big.yaml")
    expected = f"is inside {out}, in use by pid {holder.pid}"
    evaluated = adamllm("eval", "--backbone", "qwen2_vl", "--model", str(trained_run / "train" / "model"),
                        "--benchmarks", "slake", "--source", f"slake={FIXTURES / 'slake'}", "--limit", "1",
                        "--quiet", "--out", str(out / "evaluate"))
    line = error_line(evaluated)
    assert line.startswith(f"Error: {out / 'evaluate'} {expected}") and "(adamllm run big.yaml)" in line
    tiny = adamllm("tiny", "qwen2_vl", str(out / "ckpt"))
    assert error_line(tiny).startswith(f"Error: {out / 'ckpt'} {expected}")
    exported = adamllm("export", str(trained_run), str(out / "exported"))
    assert error_line(exported).startswith(f"Error: {out / 'exported'} {expected}")
    deeper = adamllm("tiny", "qwen2_vl", str(out / "a" / "b"))
    assert error_line(deeper).startswith(f"Error: {out / 'a' / 'b'} {expected}")
    assert not list((out / "evaluate").iterdir()) and not (out / "evaluate" / "slake").exists()
    assert not any((out / name).exists() and list((out / name).iterdir()) for name in ("ckpt", "exported", "a/b"))


@pytest.mark.parametrize("locked_before", [False, True], ids=["fresh-run-folder", "run-folder-locked-before"])
def test_run_refuses_a_folder_with_a_locked_folder_inside(run_config, tmp_path, hold, locked_before):
    out = tmp_path / "out"
    if locked_before:  # OUT has a lock file from an earlier run: the writer inside holds it shared
        with output_lock(out):
            pass
    holder = hold(out / "evaluate", "adamllm eval --out out/evaluate")
    result = adamllm("run", str(run_config), cwd=tmp_path)
    line = error_line(result)
    assert line.startswith(f"Error: {out} holds {out / 'evaluate'}, in use by pid {holder.pid}")
    assert line.endswith("(adamllm eval --out out/evaluate); wait for it or use another output folder")
    assert not (out / "synthesize").exists()
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    done = adamllm("run", str(run_config), cwd=tmp_path)  # the writer inside is gone: the run goes ahead
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "synthesize" / "triplets.jsonl").exists()


def test_a_process_may_lock_folders_inside_its_own(tmp_path, monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "OUT"
    with output_lock(out, command="adamllm run x.yaml"):
        with output_lock(out / "evaluate") as inner:  # a stage of the run inside the run's folder
            assert inner == out / "evaluate" / LOCK_FILE
        with pytest.raises(LockedError):  # the same folder twice is still refused (as another process)
            with output_lock(out):
                pass
    with output_lock(out / "evaluate"):  # released: another writer may now lock it, and then not OUT
        with pytest.raises(LockedError):
            with output_lock(out):
                pass


# case 17 -----------------------------------------------------------------------------------------

def test_empty_stage_lists_and_an_empty_output_dir_are_refused(run_config, tmp_path):
    for args, expected in [(("stages=[]",), "  stages: names no stage"),
                           (("output_dir=",), "  output_dir: is empty; name the folder the run writes into"),
                           (("--stages", ","), "Error: Invalid value for --stages: names no stage")]:
        result = adamllm("run", str(run_config), *args, cwd=tmp_path)
        assert result.returncode in (1, 2) and expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    run_config.write_text(run_config.read_text().replace("stages: [synthesize]", "stages: []"))
    in_file = adamllm("config", "validate", str(run_config), cwd=tmp_path)
    assert in_file.returncode == 1 and "stages: names no stage" in in_file.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs", "run.yaml"]  # nothing was written


# case 18 -----------------------------------------------------------------------------------------

def _mount_point() -> str | None:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    points = [line.split()[1] for line in lines if len(line.split()) > 1]
    return next((p for p in points if p not in ("/",) and os.path.ismount(p) and os.path.isdir(p)
                 and p.startswith(("/dev/shm", "/tmp", "/mnt", "/sys", "/proc"))), None)


def test_output_dir_may_not_be_a_root_or_the_home_folder_and_tiny_no_mount_point(run_config, tmp_path):
    home = tmp_path / "users" / "me"
    home.mkdir(parents=True)
    cases = [("/", "/ is the filesystem root"), (str(home), f"{home} is the home folder"),
             (str(tmp_path / "users"), f"{tmp_path / 'users'} is a folder holding the home folder {home}")]
    for folder, said in cases:
        result = adamllm("run", str(run_config), f"output_dir={folder}", cwd=tmp_path, HOME=str(home))
        assert result.returncode == 1 and f"  output_dir: {said}" in result.stderr, (folder, result.stderr)
        assert not Path(folder, LOCK_FILE).exists() and not Path(folder, "synthesize").exists()
    tiny = adamllm("tiny", "qwen2_vl", str(home), HOME=str(home))  # tiny and export: the same check
    assert error_line(tiny) == (f"Error: {home} is the home folder: refusing to write there; give a folder of "
                                f"its own inside it")
    assert list(home.iterdir()) == []
    evaluated = adamllm("eval", "--backbone", "qwen2_vl", "--model", "no-such-model", "--benchmarks", "slake",
                        "--out", str(home), HOME=str(home))  # eval --out: the same check, before any model loads
    assert error_line(evaluated) == (f"Error: {home} is the home folder: refusing to write there; give a folder of "
                                     f"its own inside it")
    assert list(home.iterdir()) == []
    mount = _mount_point()  # a run may write into a disk mounted for it; tiny and export replace the folder whole
    if mount:
        refused = adamllm("tiny", "qwen2_vl", mount, "--force")
        assert error_line(refused) == (f"Error: {mount} is a mount point (the root of a file system): refusing to "
                                       f"write there; give a folder of its own inside it")


# case 20 -----------------------------------------------------------------------------------------

def test_two_tiny_into_one_folder_never_both_succeed(tmp_path, hold):
    out = tmp_path / "ckpt"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ADAMLLM_")}
    both = [subprocess.Popen([sys.executable, "-m", "adamllm.cli", "tiny", "qwen2_vl", str(out)], env=environ,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in both]
    assert sorted(code for code, _ in results) == [0, 1], results
    (refused,) = [err for code, err in results if code == 1]
    assert f"{out} is in use by pid" in refused or f"{out} is not empty; use --force" in refused
    assert (out / "model.safetensors").exists() and not (out / LOCK_FILE).exists()

    other = tmp_path / "other"  # the refusal by the lock itself, whatever the timing
    holder = hold(other, "adamllm tiny qwen2_vl other")
    second = adamllm("tiny", "qwen2_vl", str(other))
    assert error_line(second).startswith(f"Error: {other} is in use by pid {holder.pid}")
    assert sorted(p.name for p in other.iterdir()) == [LOCK_FILE]
