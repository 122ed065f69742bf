"""Special files and broken text as single records (issue 21, cases 8, 9 and 10): a FIFO named as
an image, a caption holding a lone surrogate (valid JSON, invalid Unicode) and a symlink loop under
the image root are each one bad record: set aside with file:line and kind, never a hang, never the
end of the stage, never "internal error". Readers that could block run in subprocesses or threads
with a timeout, so a regression fails instead of hanging the suite."""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from adamllm.config import validate_config
from adamllm.images import BadImage, open_image
from adamllm.runner import run_pipeline
from adamllm.testing.components import TestingComponents
from adamllm.testing.data import write_mix

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")

SURROGATE_CAPTION = '"A red \\ud800 square."'  # the JSON text of a caption with an unpaired surrogate


def adamllm(*args, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def conversation(image: str, reply: str = '"A shape."') -> str:
    return ('{"images": ["%s"], "messages": [{"role": "user", "content": "<image>Describe the image."}, '
            '{"role": "assistant", "content": %s}]}\n' % (image, reply))


def special_files(images: Path) -> None:
    """A FIFO, a two-link symlink loop and a folder symlink that points at itself, under ``images``."""
    os.mkfifo(images / "fifo.png")
    os.symlink("loop_b.png", images / "loop_a.png")
    os.symlink("loop_a.png", images / "loop_b.png")
    os.symlink("loopdir", images / "loopdir")


def finishes(function, seconds: float = 20):
    """``function()``'s exception (or None), failing the test if it does not return in time."""
    outcome = {}

    def target():
        try:
            function()
            outcome["error"] = None
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert "error" in outcome, f"{function} blocked for {seconds} s"
    return outcome["error"]


def test_image_readers_refuse_what_is_not_a_regular_file_without_blocking(tmp_path):
    from adamllm.backbones.prompt_length import image_size
    from adamllm.overlap import _content

    special_files(tmp_path)
    Image.new("RGB", (8, 8), "red").save(tmp_path / "ok.png")
    cases = {"fifo.png": "a FIFO (named pipe), not an image file", "loop_a.png": "a symlink loop",
             "loopdir": "a symlink loop", os.devnull: "a device, not an image file"}
    for name, says in cases.items():
        path = tmp_path / name
        for reader in (open_image, lambda p: image_size(p), _content):
            error = finishes(lambda: reader(path))
            assert isinstance(error, BadImage) and str(error).startswith(f"{path}: {says}"), (name, error)
    assert open_image(tmp_path / "ok.png").size == (8, 8) and image_size(tmp_path / "ok.png") == (8, 8)


def test_synthesize_sets_aside_fifo_loop_and_broken_unicode_pairs_and_goes_on(builtin_plugin_manager, tmp_path):
    builtin_plugin_manager.register(TestingComponents(), "testing")
    root = tmp_path / "pairs"
    (root / "images").mkdir(parents=True)
    special_files(root / "images")
    for i, colour in enumerate(["red", "green", "blue"]):
        Image.new("RGB", (32, 32), colour).save(root / "images" / f"{i}.png")
    lines = [conversation("images/0.png"), conversation("images/fifo.png"), conversation("images/1.png"),
             conversation("images/loop_a.png"), conversation("images/loopdir/x.png"),
             conversation("images/0.png", SURROGATE_CAPTION), conversation("images/2.png")]
    pairs = root / "pairs.jsonl"
    pairs.write_text("".join(lines))
    cfg = validate_config({"output_dir": "out", "stages": ["synthesize", "filter", "compose"],
                           "data": {"synthesize": str(pairs)}, "synthesizer": {"type": "testing_echo"},
                           "filter": {"type": "testing_overlap"}, "composer": {"type": "testing_caption_task"}},
                          builtin_plugin_manager, base_dir=tmp_path)
    summary = run_pipeline(cfg, builtin_plugin_manager, echo=lambda _: None)
    rejected = tmp_path / "out" / "synthesize" / "rejected.jsonl"
    entries = [json.loads(line) for line in rejected.read_text().splitlines()]
    assert [(e["where"], e["kind"]) for e in entries] == [
        (f"{pairs}:2", "bad_image"), (f"{pairs}:4", "symlink_loop"), (f"{pairs}:5", "symlink_loop"),
        (f"{pairs}:6", "bad_record")]
    assert "not a regular file" in entries[0]["reason"]
    assert "symlink loop" in entries[1]["reason"] and "loop_a.png" in entries[1]["reason"]
    assert entries[3]["reason"] == "text is not valid Unicode: an unpaired surrogate \\ud800 (a broken UTF-16 escape)"
    assert summary["synthesize"]["triplets"] == 3 and summary["compose"]["examples"] == 3


def test_a_json_array_with_a_broken_unicode_record_loses_only_that_record(tmp_path):
    from adamllm.io import iter_records

    path = tmp_path / "records.json"
    path.write_text('[{"caption": "fine"},\n {"caption": "bad \\udc00"},\n {"caption": "emoji \\ud83d\\ude00"}]')
    problems = []
    records = list(iter_records(path, on_error=lambda where, message: problems.append((where, message))))
    assert [r["caption"] for _, r in records] == ["fine", "emoji \U0001F600"]
    assert problems == [(f"{path}:2",
                         "text is not valid Unicode: an unpaired surrogate \\udc00 (a broken UTF-16 escape)")]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from adamllm.backbones.tiny import build_tiny

    return build_tiny("qwen2_vl", tmp_path_factory.mktemp("tiny") / "qwen", size="tiny", seed=0)


def test_train_sets_aside_a_fifo_a_loop_and_broken_unicode_and_trains_on_the_rest(tmp_path, tiny_checkpoint):
    data = tmp_path / "data"
    write_mix(data, n=4)
    special_files(data / "images")
    mix = data / "mix.jsonl"
    with mix.open("a") as handle:
        handle.write(conversation("images/fifo.png") + conversation("images/loop_a.png")
                     + conversation("images/0.png", SURROGATE_CAPTION))
    config = tmp_path / "run.yaml"
    config.write_text(f"output_dir: out\nstages: [train]\nbackbone: {{type: qwen2_vl, model: {tiny_checkpoint}}}\n"
                      f"trainer: {{type: sft, batch_size: 4, max_steps: 1}}\ndata: {{train: data/mix.jsonl}}\n")
    result = adamllm("run", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    train = tmp_path / "out" / "train"
    entries = [json.loads(line) for line in (train / "rejected.jsonl").read_text().splitlines()]
    by_where = {e["where"]: e["reason"] for e in entries}
    assert set(by_where) == {f"{mix}:5", f"{mix}:6", f"{mix}:7"}
    assert "a FIFO (named pipe), not an image file" in by_where[f"{mix}:5"]
    assert "symlink loop" in by_where[f"{mix}:6"]
    assert "unpaired surrogate \\ud800" in by_where[f"{mix}:7"]
    summary = json.loads((train / "summary.json").read_text())
    assert summary["samples"] == 4 and summary["steps"] == 1 and summary["rejected"] == 3


def test_inspect_names_loops_fifos_and_broken_records_and_checks_the_rest(tmp_path):
    pytest.importorskip("imagehash")
    root = tmp_path / "p"
    (root / "images").mkdir(parents=True)
    special_files(root / "images")
    for i, colour in enumerate(["red", "green"]):
        Image.new("RGB", (40, 40), colour).save(root / "images" / f"{i}.png")
    pairs = root / "pairs.jsonl"
    pairs.write_text(conversation("images/0.png", '"A red square."') + conversation("images/1.png", '"A green one."')
                     + conversation("images/loop_a.png") + conversation("images/0.png", SURROGATE_CAPTION))
    (tmp_path / "run.yaml").write_text("output_dir: out\nstages: [synthesize, filter, compose]\n"
                                       "data: {synthesize: p/pairs.jsonl}\nsynthesizer: {type: rules}\n"
                                       "filter: {type: none}\ncomposer: {type: adamllm}\n")
    made = adamllm("run", "run.yaml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    mix = tmp_path / "out" / "compose" / "mix.jsonl"
    composed = mix.read_text().splitlines()
    first = json.loads(composed[0])
    os.mkfifo(tmp_path / "out" / "compose" / "images" / "fifo.png")
    with mix.open("a") as handle:  # a FIFO in the training mix: read by the overlap check's hashing
        handle.write(json.dumps({**first, "id": "fifo", "images": ["images/fifo.png"]}) + "\n")
    result = adamllm("inspect", "out", "--against", "p/pairs.jsonl", "--json", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    overlap = json.loads(result.stdout)["overlap"]
    assert overlap["benchmark_problems"] == [
        f"p/pairs.jsonl:3: path 'images/loop_a.png' under '{root}' is a symlink loop",
        "p/pairs.jsonl:4: text is not valid Unicode: an unpaired surrogate \\ud800 (a broken UTF-16 escape)"]
    # the FIFO is one unreadable image; every composed image is still found as a copy of its pair's image
    assert overlap["train_unreadable"] == 1 and overlap["exact_pairs"] == len(composed) >= 1


def test_a_plugin_readers_pair_with_broken_unicode_is_set_aside_naming_its_line(tmp_path):
    from adamllm.pairs import PairStats, read_pairs
    from adamllm.quarantine import Quarantine
    from adamllm.records import ImageCaptionPair

    source = tmp_path / "recipes.txt"
    source.write_text("two recipes\n")

    def reader(path, stats=None):  # a domain's own reader: its text never went through core's JSON reader
        yield f"{path}:1", ImageCaptionPair(id="a", image=str(tmp_path / "a.png"), caption="Soup \ud800.")
        yield f"{path}:2", ImageCaptionPair(id="b", image=str(tmp_path / "b.png"), caption="Bread.")

    with Quarantine(tmp_path / "rejected.jsonl") as quarantine:
        pairs = [pair.id for _, pair in read_pairs(source, "recipes", reader, stats=PairStats(quarantine=quarantine))]
    assert pairs == ["b"]
    [entry] = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert entry["where"] == f"{source}:1" and "not valid Unicode" in entry["reason"]
