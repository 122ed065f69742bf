"""The bad-input corpus, stage by stage: every bad record is set aside and counted, none is lost.

Under ``on_bad_record: skip`` each case lands in ``OUT/<stage>/rejected.jsonl`` with where it came
from (file:line) and why, the good records go on, and every input line is accounted for (kept +
rejected + skipped by design = lines). Under ``error`` the first bad record stops the stage,
naming its file and line.
"""
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from adamllm.config import validate_config
from adamllm.io import DataError
from adamllm.runner import StageError, run_pipeline
from adamllm.testing.components import TestingComponents

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _corpus_module():
    spec = importlib.util.spec_from_file_location("bad_images", FIXTURES / "bad_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CORPUS = _corpus_module()


def pair_line(image, caption="A shape on a background.", **extra) -> bytes:
    record = {"images": [image] if isinstance(image, str) else image,
              "messages": [{"role": "user", "content": "<image>Describe the image."},
                           {"role": "assistant", "content": caption}], **extra}
    return (json.dumps(record) + "\n").encode()


@pytest.fixture
def pm(builtin_plugin_manager):
    builtin_plugin_manager.register(TestingComponents(), "testing")
    return builtin_plugin_manager


@pytest.fixture
def pairs_file(tmp_path):
    """A JSONL pairs file holding every case; returns (path, expected kind per line or None for kept)."""
    root = tmp_path / "pairs"
    images = CORPUS.write_corpus(root / "images")
    outside = tmp_path / "outside.png"
    shutil.copy(images["rgb"], outside)
    os.symlink(outside, root / "images" / "link_out.png")
    lines: list[tuple[bytes, str | None]] = []
    first = pair_line("images/rgb.png", "A green square, first line, after a byte-order mark.")
    lines.append((b"\xef\xbb\xbf" + first, None))
    for name in CORPUS.GOOD:
        lines.append((pair_line(f"images/{images[name].name}", f"A {name} picture."), None))
    for name in CORPUS.BAD:
        lines.append((pair_line(f"images/{images[name].name}", f"A {name} picture."), "bad_image"))
    lines += [
        (pair_line("images/missing.png", "Missing."), "missing_image"),
        (pair_line("../outside.png", "Up and out."), "path_escape"),
        (pair_line(str(outside), "Absolute, outside."), "path_escape"),
        (pair_line("images/link_out.png", "A symlink out of the root."), "path_escape"),
        (b'{"images": ["images/rgb.png"], "messages": [\n', "bad_record"),            # malformed JSON
        (b'["images/rgb.png", "A caption"]\n', "bad_record"),                           # an array, not an object
        (b'{"images": ["images/rgb.png"], "caption": "caf\xe9"}\n', "bad_record"),      # not UTF-8
        (pair_line("images/rgb.png", ["a", "list"]), "bad_record"),                     # wrong type
        (json.dumps({"images": ["images/rgb.png"]}).encode() + b"\n", "missing_field"),
        (pair_line("images/rgb.png", "   "), "empty_caption"),
        (pair_line("images/rgb.png", "word " * 5000), "caption_too_long"),
        (pair_line("images/rgb.png", "Twice.", id="same"), None),
        (pair_line("images/gray.png", "Twice again.", id="same"), "duplicate_id"),
        (pair_line(["images/rgb.png", "images/gray.png"], "Two images."), "not_one_image"),
    ]
    path = root / "image_caption_pairs.jsonl"
    path.write_bytes(b"".join(line for line, _ in lines))
    return path, [kind for _, kind in lines]


def run(pm, tmp_path, pairs, stages, **extra):
    cfg = validate_config({"output_dir": "out", "stages": stages, "data": {"synthesize": str(pairs)},
                           "synthesizer": {"type": "testing_echo"}, "filter": {"type": "testing_overlap"},
                           "composer": {"type": "testing_caption_task"}, **extra}, pm, base_dir=tmp_path)
    return run_pipeline(cfg, pm, echo=lambda _: None)


def rejected(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_synthesize_sets_aside_every_bad_pair_and_loses_none(pm, tmp_path, pairs_file):
    pairs, kinds = pairs_file
    summary = run(pm, tmp_path, pairs, ["synthesize", "filter", "compose"])
    out = tmp_path / "out"
    entries = rejected(out / "synthesize" / "rejected.jsonl")
    bad_lines = [i + 1 for i, kind in enumerate(kinds) if kind not in (None, "not_one_image")]
    assert sorted(int(e["where"].rpartition(":")[2]) for e in entries) == bad_lines
    assert all(e["where"].startswith(f"{pairs}:") and e["reason"] for e in entries)
    assert [e["kind"] for e in sorted(entries, key=lambda e: int(e["where"].rpartition(":")[2]))] == \
        [k for k in kinds if k not in (None, "not_one_image")]
    expected_counts = {k: kinds.count(k) for k in set(kinds) if k not in (None, "not_one_image")}
    assert summary["synthesize"]["rejected_by_kind"] == expected_counts
    assert summary["synthesize"]["pairs_skipped"] == {"not_one_image": 1}
    kept = kinds.count(None)
    assert summary["synthesize"]["triplets"] == kept
    # nothing lost: every line is a triplet, a rejected record or a by-design skip
    assert kept + len(entries) + 1 == len(kinds)
    bad_images = [e for e in entries if e["kind"] == "bad_image"]
    assert len(bad_images) == len(CORPUS.BAD) and all(".png" in e["reason"] for e in bad_images)  # names the file
    # the later stages see only the kept pairs
    mix = [json.loads(line) for line in (out / "compose" / "mix.jsonl").read_text().splitlines()]
    assert len(mix) == kept
    assert summary["compose"]["rejected_by_kind"] == {k: v for k, v in expected_counts.items() if k != "bad_image"}


def test_a_rerun_keeps_the_counts_and_adds_no_duplicate_rejections(pm, tmp_path, pairs_file):
    pairs, _ = pairs_file
    first = run(pm, tmp_path, pairs, ["synthesize"])
    (tmp_path / "out" / "synthesize" / "_done.json").unlink()  # as if interrupted at the very end
    again = run(pm, tmp_path, pairs, ["synthesize"])
    assert again["synthesize"]["rejected_by_kind"] == first["synthesize"]["rejected_by_kind"]
    entries = rejected(tmp_path / "out" / "synthesize" / "rejected.jsonl")
    assert len(entries) == first["synthesize"]["rejected"]


def test_on_bad_record_error_stops_at_the_first_bad_record_naming_it(pm, tmp_path, pairs_file):
    pairs, kinds = pairs_file
    first_bad = next(i for i, k in enumerate(kinds) if k is not None and k != "not_one_image") + 1
    with pytest.raises(DataError, match="on_bad_record: error") as info:
        run(pm, tmp_path, pairs, ["synthesize"], on_bad_record="error")
    assert str(info.value).startswith(f"{pairs}:{first_bad}: ")
    assert not (tmp_path / "out" / "synthesize" / "rejected.jsonl").exists()


def test_a_stage_with_no_usable_record_fails(pm, tmp_path):
    root = tmp_path / "pairs"
    CORPUS.write_corpus(root / "images")
    path = root / "image_caption_pairs.jsonl"
    path.write_bytes(pair_line("images/corrupt.png") + pair_line("images/missing.png"))
    with pytest.raises(StageError, match=r"no usable image-caption pairs: 2 rejected \(bad_image: 1, missing_image: 1\)"):
        run(pm, tmp_path, path, ["synthesize"])
    empty = root / "empty.json"
    empty.write_text("")
    with pytest.raises(DataError, match="empty file"):
        run(pm, tmp_path, empty, ["synthesize"])
    empty.write_text("[]")
    with pytest.raises(StageError, match="no usable image-caption pairs"):
        run(pm, tmp_path, empty, ["synthesize"])


def test_filter_and_compose_set_aside_bad_triplets_and_repeated_ids(pm, tmp_path):
    from adamllm.testing.data import write_pairs

    pairs = write_pairs(tmp_path / "pairs", n=3)
    run(pm, tmp_path, pairs, ["synthesize"])
    triplets = (tmp_path / "out" / "synthesize" / "triplets.jsonl").read_text().splitlines()
    first = json.loads(triplets[0])
    given = tmp_path / "triplets.jsonl"
    given.write_text("\n".join(triplets + [json.dumps(first),                      # a repeated id
                                           json.dumps({**first, "id": "e", "precise": ""}),  # empty answer
                                           "{not json"]) + "\n")
    summary = run(pm, tmp_path, pairs, ["filter"], data={"synthesize": str(pairs), "filter": str(given)})
    assert summary["filter"]["triplets"] == 3
    assert summary["filter"]["rejected_by_kind"] == {"duplicate_id": 1, "bad_record": 2}
    where = [e["where"] for e in rejected(tmp_path / "out" / "filter" / "rejected.jsonl")]
    assert where == [f"{given}:4", f"{given}:5", f"{given}:6"]
