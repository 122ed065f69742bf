"""``adamllm tiny`` and ``adamllm export`` refuse a non-empty output folder unless ``--force``, which
replaces it once the new one is complete."""
import json
import os
import subprocess
import sys

import pytest


def adamllm(*args, cwd=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ADAMLLM_")}
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          env=environ, cwd=cwd, timeout=300)


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A trained-looking run folder (a full fine-tune) around a tiny checkpoint."""
    run = tmp_path_factory.mktemp("run")
    made = adamllm("tiny", "qwen2_vl", str(run / "train" / "model"))
    assert made.returncode == 0, made.stderr
    (run / "train" / "run_info.json").write_text(json.dumps({"backbone": "qwen2_vl", "mode": "full",
                                                              "model_dir": "model"}))
    return run


def test_tiny_refuses_a_non_empty_folder_unless_force(tiny_run, tmp_path):
    out = tmp_path / "ckpt"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused = adamllm("tiny", "qwen2_vl", str(out))
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1] == f"Error: {out} is not empty; use --force to replace it, or give another folder"
    assert _names(out) == ["notes.txt"]  # untouched
    forced = adamllm("tiny", "qwen2_vl", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "notes.txt" not in _names(out) and (out / "model.safetensors").exists()
    assert _names(out) == _names(tiny_run / "train" / "model")  # the same complete checkpoint
    assert _names(tmp_path) == ["ckpt"]  # no staging folder left
    again = adamllm("tiny", "qwen2_vl", str(out))  # a checkpoint is not empty either
    assert again.returncode == 1 and "use --force" in again.stderr


def test_force_never_replaces_the_working_directory(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = adamllm("tiny", "qwen2_vl", ".", "--force", cwd=tmp_path)
    assert result.returncode == 1 and "refusing to replace" in result.stderr
    assert _names(tmp_path) == ["keep.txt"]


def test_export_refuses_a_non_empty_folder_unless_force(tiny_run, tmp_path):
    out = tmp_path / "exported"
    first = adamllm("export", str(tiny_run), str(out))
    assert first.returncode == 0, first.stderr
    assert (out / "model.safetensors").exists()
    (out / "stale.txt").write_text("old")
    refused = adamllm("export", str(tiny_run), str(out))
    assert refused.returncode == 1 and f"Error: {out} is not empty; use --force" in refused.stderr
    assert (out / "stale.txt").exists()
    forced = adamllm("export", str(tiny_run), str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").exists()
    inside = adamllm("export", str(tiny_run), str(tiny_run), "--force")  # would delete its own input
    assert inside.returncode == 1 and "refusing to write" in inside.stderr
    assert (tiny_run / "train" / "model" / "model.safetensors").exists()
