"""Issue 21, content fingerprints: a stage reruns when a file its records name changes, not only
when the file listing them does (cases 3, 4, 7), and the per-file hash cache behind it.

- case 3: a benchmark edited after evaluation reruns the pipeline's evaluate stage and makes
  ``adamllm eval`` evaluate it again, naming the file;
- case 4: a training image replaced under the same name retrains;
- case 7: a triplet deleted by hand from ``triplets.jsonl`` is noticed and made again.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from adamllm.config import validate_config
from adamllm.content import CACHE_NAME, ContentCache, files_digest, folder_files, listing_digest, record_images
from adamllm.runner import run_pipeline
from adamllm.testing.data import write_mix, write_pairs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def run_cli(cwd, *args):
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def _age(path: Path, seconds: int = 60) -> None:
    """Set a file's mtime in the past, as a file written long before it was hashed."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - seconds * 10**9))


# -- the cache ------------------------------------------------------------------------------
def test_cache_hashes_once_then_reuses_and_sees_a_replacement(tmp_path):
    files = []
    for i in range(3):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(bytes([i]) * 100)
        _age(path)
        files.append(path)
    with ContentCache(tmp_path / CACHE_NAME) as cache:
        first = files_digest(cache, [(p.name, str(p)) for p in files])
        assert cache.hashed == 3 and first["files"] == 3 and first["missing"] == 0
    with ContentCache(tmp_path / CACHE_NAME) as cache:  # an unchanged rerun: nothing is read again
        assert files_digest(cache, [(p.name, str(p)) for p in files]) == first and cache.hashed == 0
    # same size, same mtime restored: still seen (ctime moved), and named as changed
    stat = files[1].stat()
    files[1].write_bytes(b"x" * 100)
    os.utime(files[1], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with ContentCache(tmp_path / CACHE_NAME) as cache:
        second = files_digest(cache, [(p.name, str(p)) for p in files])
        assert second["digest"] != first["digest"] and cache.hashed == 1
        assert cache.changed_names() == [str(files[1])]


def test_full_hash_rereads_every_file(tmp_path, monkeypatch):
    path = tmp_path / "a.bin"
    path.write_bytes(b"a" * 10)
    _age(path)
    with ContentCache(tmp_path / CACHE_NAME) as cache:
        before = cache.sha(path)
    # a cache whose recorded hash is wrong (a file system whose times cannot be trusted): only a
    # full hash reads the file again and finds the truth
    with ContentCache(tmp_path / CACHE_NAME) as cache:
        cache._db.execute("UPDATE files SET sha = ?", ("0" * 64,))
        assert cache.sha(path) == "0" * 64
    with ContentCache(tmp_path / CACHE_NAME, full=True) as cache:
        assert cache.sha(path) == before and cache.hashed == 1
    monkeypatch.setenv("ADAMLLM_FULL_HASH", "1")
    with ContentCache(tmp_path / CACHE_NAME) as cache:
        assert cache.full and cache.sha(path) == before


def test_cache_reads_regular_files_only_and_survives_corruption(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)  # a link loop is not followed
    (tmp_path / "ok.txt").write_text("ok")
    (tmp_path / CACHE_NAME).write_bytes(b"not a database at all" * 100)
    with ContentCache(tmp_path / CACHE_NAME) as cache:
        assert cache.sha(fifo) is None and cache.sha(tmp_path / "missing") is None
        listed = [name for name, _ in folder_files(tmp_path)]
        assert "ok.txt" in listed and CACHE_NAME not in listed
        assert files_digest(cache, folder_files(tmp_path))["missing"] >= 1  # the FIFO, never opened


def test_record_images_resolves_as_the_trainer_does(tmp_path):
    mix = write_mix(tmp_path / "data", n=3)
    shutil.move(str(tmp_path / "data" / "images" / "2.png"), tmp_path / "elsewhere.png")
    named = list(record_images(mix, mix.parent))
    assert [n for n, _ in named] == ["images/0.png", "images/1.png", "images/2.png"]
    assert named[0][1] == str(mix.parent / "images" / "0.png")


def test_an_unchanged_listing_is_checked_without_lookups(tmp_path):
    mix = write_mix(tmp_path / "data", n=5)
    for path in [mix, *(tmp_path / "data" / "images").iterdir()]:
        _age(path)
    with ContentCache(tmp_path / CACHE_NAME) as cache:
        first = listing_digest(cache, mix, mix.parent)
        assert first["files"] == 5 and cache.hashed == 5
    with ContentCache(tmp_path / CACHE_NAME) as cache:
        cache._db.execute("DELETE FROM files")  # the stored listing alone answers
        assert listing_digest(cache, mix, mix.parent) == first and cache.hashed == 0
    image = tmp_path / "data" / "images" / "3.png"
    Image.new("RGB", Image.open(image).size, (5, 5, 5)).save(image)
    with ContentCache(tmp_path / CACHE_NAME) as cache:
        changed = listing_digest(cache, mix, mix.parent)
        assert changed["digest"] != first["digest"] and cache.hashed == 5  # the per-file rows were deleted
    image.write_bytes(b"")  # now an empty file: still a change, and one a fresh listing stores nothing for (racy)
    with ContentCache(tmp_path / CACHE_NAME) as cache:
        assert listing_digest(cache, mix, mix.parent)["digest"] not in (first["digest"], changed["digest"])
        assert cache.racy


# -- case 7: a triplet deleted by hand ------------------------------------------------------
def _data_config(tmp_path, pm, stages=("synthesize", "filter", "compose")):
    write_pairs(tmp_path / "pairs", n=6)
    return validate_config({"output_dir": "out", "stages": list(stages),
                            "data": {"synthesize": "pairs/image_caption_pairs.json"},
                            "synthesizer": {"type": "rules"}, "filter": {"type": "none"},
                            "composer": {"type": "adamllm"}},
                           pm, source=tmp_path / "run.yaml", base_dir=tmp_path)


def test_a_triplet_deleted_by_hand_is_made_again(tmp_path, builtin_plugin_manager):
    cfg = _data_config(tmp_path, builtin_plugin_manager)
    run_pipeline(cfg, builtin_plugin_manager, echo=lambda _: None)
    out = tmp_path / "out"
    triplets = (out / "synthesize" / "triplets.jsonl").read_bytes()
    mix = (out / "compose" / "mix.jsonl").read_bytes()
    lines = triplets.splitlines(keepends=True)
    assert len(lines) >= 3
    lost = json.loads(lines[1])["id"]
    (out / "synthesize" / "triplets.jsonl").write_bytes(b"".join(lines[:1] + lines[2:]))

    said = []
    run_pipeline(cfg, builtin_plugin_manager, echo=said.append)
    text = "\n".join(said)
    assert f"{len(lines)} lines when it finished, {len(lines) - 1} now" in text
    assert f"synthesizing them again" in text and lost in text
    # made again, in its place: the same file, so filter and compose are still valid
    assert (out / "synthesize" / "triplets.jsonl").read_bytes() == triplets
    assert "[filter] already done" in text and "[compose] already done" in text
    assert (out / "compose" / "mix.jsonl").read_bytes() == mix
    assert json.loads((out / "synthesize" / "_done.json").read_text())["output"]["lines"] == len(lines)
    said.clear()
    run_pipeline(cfg, builtin_plugin_manager, echo=said.append)  # nothing left to do
    assert all("already done" in line for line in said), said


def test_an_edited_verdicts_file_is_completed_and_later_stages_rerun(tmp_path, builtin_plugin_manager):
    cfg = _data_config(tmp_path, builtin_plugin_manager)
    run_pipeline(cfg, builtin_plugin_manager, echo=lambda _: None)
    verdicts = tmp_path / "out" / "filter" / "verdicts.jsonl"
    whole = verdicts.read_bytes()
    verdicts.write_bytes(b"".join(whole.splitlines(keepends=True)[:-1]))  # the last verdict deleted
    said = []
    run_pipeline(cfg, builtin_plugin_manager, echo=said.append)
    assert any(line.startswith("[filter]") and "was changed after the stage finished" in line for line in said)
    assert verdicts.read_bytes() == whole and "[compose] already done" in "\n".join(said)


# -- case 4: a training image replaced under the same name ----------------------------------
def test_a_replaced_training_image_retrains_and_is_named(tmp_path, builtin_plugin_manager):
    write_mix(tmp_path / "data", n=4)
    cfg = validate_config({"output_dir": "out", "seed": 1, "stages": ["train"],
                           "backbone": {"type": "qwen2_vl", "model": "base", "tiny": "tiny"},
                           "trainer": {"type": "sft", "batch_size": 2, "max_steps": 1, "learning_rate": 0.001},
                           "data": {"train": "data/mix.jsonl"}},
                          builtin_plugin_manager, source=tmp_path / "run.yaml", base_dir=tmp_path)
    run_pipeline(cfg, builtin_plugin_manager, echo=lambda _: None)
    said = []
    run_pipeline(cfg, builtin_plugin_manager, echo=said.append)
    assert said == ["[train] already done with the same config and inputs; skipping (--force reruns it)"]
    image = tmp_path / "data" / "images" / "1.png"
    size = Image.open(image).size
    Image.new("RGB", size, (1, 2, 3)).save(image)  # another picture, same file name; mix.jsonl untouched
    said.clear()
    run_pipeline(cfg, builtin_plugin_manager, echo=said.append)
    assert said[0].startswith("[train] rerunning from scratch"), said
    assert "images named by $CONFIG_DIR/data/mix.jsonl changed" in said[0]
    assert "$CONFIG_DIR/data/images/1.png" in said[0]  # which file changed
    said.clear()
    run_pipeline(cfg, builtin_plugin_manager, echo=said.append)
    assert "already done" in said[0]


# -- case 3: a benchmark edited after evaluation --------------------------------------------
def _edit_first_question(folder: Path) -> None:
    path = folder / "test.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    first = json.loads(lines[0])
    first.update(input="Which organ is shown in this image?", label="Heart")
    path.write_text(json.dumps(first) + "\n" + "".join(lines[1:]))


def _predictions(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]


def test_an_edited_benchmark_reruns_the_evaluate_stage(tmp_path, builtin_plugin_manager, tiny_checkpoints):
    shutil.copytree(FIXTURES / "slake", tmp_path / "data" / "slake")
    cfg = validate_config({"output_dir": "out", "stages": ["evaluate"],
                           "backbone": {"type": "qwen2_vl", "model": str(tiny_checkpoints("qwen2_vl"))},
                           "benchmarks": [{"type": "slake", "source": "data/slake", "limit": 2, "max_new_tokens": 2}]},
                          builtin_plugin_manager, source=tmp_path / "run.yaml", base_dir=tmp_path)
    run_pipeline(cfg, builtin_plugin_manager, echo=lambda _: None)
    said = []
    run_pipeline(cfg, builtin_plugin_manager, echo=said.append)
    assert "already done" in said[0]
    _edit_first_question(tmp_path / "data" / "slake")
    said.clear()
    run_pipeline(cfg, builtin_plugin_manager, echo=said.append)
    assert said[0].startswith("[evaluate] rerunning from scratch"), said
    assert "input $CONFIG_DIR/data/slake changed (changed file(s): $CONFIG_DIR/data/slake/test.jsonl)" in said[0]
    first = _predictions(tmp_path / "out" / "evaluate" / "slake")[0]
    assert first["prompt"].startswith("Which organ is shown") and first["label"] == "Heart"
    # a replaced image reruns it too
    Image.new("L", Image.open(tmp_path / "data" / "slake" / "images" / "gray.png").size, 7).save(
        tmp_path / "data" / "slake" / "images" / "gray.png")
    said.clear()
    run_pipeline(cfg, builtin_plugin_manager, echo=said.append)
    assert "$CONFIG_DIR/data/slake/images/gray.png" in said[0]


def test_adamllm_eval_does_not_reuse_predictions_of_an_edited_benchmark(tmp_path, tiny_checkpoints):
    shutil.copytree(FIXTURES / "slake", tmp_path / "slake")
    args = ["eval", "--backbone", "qwen2_vl", "--model", str(tiny_checkpoints("qwen2_vl")), "--benchmarks", "slake",
            "--source", "slake=slake", "--limit", "2", "--max-new-tokens", "2", "--out", "ev", "--quiet"]
    first = run_cli(tmp_path, *args)
    assert first.returncode == 0, first.stderr[-2000:]
    made = (tmp_path / "ev" / "slake" / "predictions.jsonl").stat().st_mtime_ns
    again = run_cli(tmp_path, *args)  # unchanged: every prediction reused
    assert again.returncode == 0 and "evaluating it again" not in again.stderr
    assert (tmp_path / "ev" / "slake" / "predictions.jsonl").stat().st_mtime_ns == made
    _edit_first_question(tmp_path / "slake")
    edited = run_cli(tmp_path, *args)
    assert edited.returncode == 0, edited.stderr[-2000:]
    assert (f"slake: the benchmark's content changed since its predictions in ev/slake "
            f"(changed file(s): {tmp_path / 'slake' / 'test.jsonl'}); evaluating the samples it changed again") \
        in edited.stderr
    first = _predictions(tmp_path / "ev" / "slake")[0]
    assert first["prompt"].startswith("Which organ is shown") and first["label"] == "Heart"
    run_json = json.loads((tmp_path / "ev" / "slake" / "run.json").read_text())
    assert run_json["inputs"]["source"]["files"] == 3  # test.jsonl and its two images, by content


def test_a_replaced_pair_image_reruns_synthesize_and_compose(tmp_path, builtin_plugin_manager):
    cfg = _data_config(tmp_path, builtin_plugin_manager)
    run_pipeline(cfg, builtin_plugin_manager, echo=lambda _: None)
    image = tmp_path / "pairs" / "images" / "pair2.png"
    replacement = tmp_path / "new.png"
    Image.new("RGB", Image.open(image).size, (9, 9, 9)).save(replacement)
    os.replace(replacement, image)  # a new file under the old name (the mix's hard link keeps the old one)
    said = []
    run_pipeline(cfg, builtin_plugin_manager, echo=said.append)
    text = "\n".join(said)
    assert "[synthesize] rerunning from scratch" in text
    assert "images named by $CONFIG_DIR/pairs/image_caption_pairs.json changed" in text
    assert "$CONFIG_DIR/pairs/images/pair2.png" in text
    linked = [p for p in (tmp_path / "out" / "compose" / "images").rglob("pair2.png")]
    assert linked and linked[0].read_bytes() == image.read_bytes()  # the mix uses the new picture
