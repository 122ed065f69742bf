"""The train stage under the bad-input corpus: bad records set aside with file:line, the rest train."""
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from adamllm.config import validate_config
from adamllm.io import DataError
from adamllm.runner import run_pipeline

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
spec = importlib.util.spec_from_file_location("bad_images", FIXTURES / "bad_images.py")
CORPUS = importlib.util.module_from_spec(spec)
spec.loader.exec_module(CORPUS)


def example(image, reply="A shape.", **extra) -> dict:
    return {"messages": [{"role": "user", "content": "<image>Describe the image."},
                         {"role": "assistant", "content": reply}], "images": [image], **extra}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from adamllm.backbones.tiny import build_tiny

    return build_tiny("qwen2_vl", tmp_path_factory.mktemp("tiny") / "qwen", size="tiny", seed=0)


@pytest.fixture
def mix(tmp_path):
    root = tmp_path / "data"
    images = CORPUS.write_corpus(root / "images")
    outside = tmp_path / "outside.png"
    shutil.copy(images["rgb"], outside)
    os.symlink(outside, root / "images" / "link_out.png")
    cases = [(example(f"images/{images[name].name}", f"A {name} picture."), None) for name in CORPUS.GOOD]
    cases += [(example(f"images/{images[name].name}"), "bad_record") for name in CORPUS.BAD]
    cases += [
        (example("images/missing.png"), "bad_record"),
        (example("../outside.png"), "bad_record"),
        (example(str(outside)), "bad_record"),
        (example("images/link_out.png"), "bad_record"),
        ({"messages": [{"role": "user", "content": "<image>Describe."}], "images": ["images/rgb.png"]}, "bad_record"),
        (example("images/rgb.png", "  "), "bad_record"),                     # an empty caption
        (example("images/rgb.png", "word " * 400), "too_long"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "bad_record"),  # wrong role
        (example("images/rgb.png", "First.", id="dup"), None),
        (example("images/gray.png", "Second.", id="dup"), "duplicate_id"),
        ({"messages": "not a list", "images": []}, "bad_record"),
    ]
    path = root / "mix.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record, _ in cases) + "{torn\n")
    return path, [kind for _, kind in cases] + ["bad_record"]


def config(tmp_path, mix_path, checkpoint, **extra):
    from adamllm.registry import PluginManager

    pm = PluginManager(no_plugins=True, strict=True)
    cfg = validate_config({"output_dir": "out", "stages": ["train"], "data": {"train": str(mix_path)},
                           "backbone": {"type": "qwen2_vl", "model": str(checkpoint), "max_length": 600},
                           "trainer": {"type": "sft", "max_steps": 1, "batch_size": 4}, **extra}, pm, base_dir=tmp_path)
    return cfg, pm


def test_train_sets_aside_every_bad_record_with_its_line(tmp_path, mix, tiny_checkpoint):
    path, kinds = mix
    cfg, pm = config(tmp_path, path, tiny_checkpoint)
    summary = run_pipeline(cfg, pm, echo=lambda _: None)["train"]
    entries = [json.loads(line) for line in (tmp_path / "out" / "train" / "rejected.jsonl").read_text().splitlines()]
    by_line = {int(e["where"].rpartition(":")[2]): e["kind"] for e in entries}
    assert by_line == {i + 1: kind for i, kind in enumerate(kinds) if kind is not None}
    assert all(e["where"].startswith(f"{path}:") and e["reason"] for e in entries)
    escapes = [e["reason"] for e in entries if int(e["where"].rpartition(":")[2]) in (
        len(CORPUS.GOOD) + len(CORPUS.BAD) + 2, len(CORPUS.GOOD) + len(CORPUS.BAD) + 3,
        len(CORPUS.GOOD) + len(CORPUS.BAD) + 4)]
    assert len(escapes) == 3 and all("escapes its root" in reason for reason in escapes)
    kept = kinds.count(None)
    assert summary["samples"] == kept and summary["steps"] == 1
    assert summary["rejected"] == len(kinds) - kept  # nothing lost: trained + rejected = lines


def test_train_under_on_bad_record_error_stops_before_training(tmp_path, mix, tiny_checkpoint):
    path, kinds = mix
    cfg, pm = config(tmp_path, path, tiny_checkpoint, on_bad_record="error")
    # records are checked before any image is decoded: the first one refused is the one without a reply
    first_bad = len(CORPUS.GOOD) + len(CORPUS.BAD) + 5
    with pytest.raises(DataError, match=rf"^{path}:{first_bad}: no assistant turn"):
        run_pipeline(cfg, pm, echo=lambda _: None)
    assert not (tmp_path / "out" / "train" / "model").exists()
