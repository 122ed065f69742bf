"""The public-layout reader's bad records: handed to ``on_error`` (the quarantine) in their place,
or raised naming them; hub records may embed images, not name paths on this machine."""
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from adamllm.domains.benchmarks import BENCHMARK_CLASSES, LayoutBenchmarkConfig
from adamllm.domains.layout import read_layout
from adamllm.io import DataError
from adamllm.quarantine import Quarantine


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (1, 2, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bad_records_go_to_on_error_in_their_place(tmp_path):
    (tmp_path / "a.png").write_bytes(png())
    (tmp_path / "outside.png").write_bytes(png())
    good = {"image": "a.png", "input": "q", "label": "x"}
    (tmp_path / "t.jsonl").write_text("\n".join([
        json.dumps(good),                                              # line 1, index 0
        "{broken",                                                     # line 2, index 1: invalid JSON
        "",                                                            # line 3: blank, not a record
        "[1, 2]",                                                      # line 4, index 2: not an object
        json.dumps({"image": "a.png", "input": "q"}),                  # line 5, index 3: no label
        json.dumps({**good, "image": "missing.png"}),                  # line 6, index 4: no such image
        json.dumps({**good, "image": "../outside.png"}),               # line 7, index 5: leaves the folder
        json.dumps(good),                                              # line 8, index 6
    ]) + "\n")
    seen = []
    records = list(read_layout(tmp_path, on_error=lambda where, reason: seen.append((where, reason))))
    file = tmp_path / "t.jsonl"
    assert [(r.where, r.index) for r in records] == [(f"{file}:1", 0), (f"{file}:8", 6)]  # ids do not move
    assert [where for where, _ in seen] == [f"{file}:{n}" for n in (2, 4, 5, 6, 7)]
    assert seen[0][1].startswith("invalid JSON") and seen[1][1] == "expected a JSON object, got list"
    assert seen[2][1] == "missing field(s) label" and seen[3][1].startswith("image 'missing.png' not found")
    assert "escapes its root" in seen[4][1]
    with pytest.raises(DataError, match=r"t\.jsonl:2: invalid JSON"):
        list(read_layout(tmp_path))
    # a limit counts the rejected records too: the first 3 records are lines 1, 2 and 4
    seen.clear()
    assert len(list(read_layout(tmp_path, limit=3, on_error=lambda w, r: seen.append(w)))) == 1
    assert len(seen) == 2


def test_benchmark_samples_quarantine_and_default_ids(tmp_path):
    (tmp_path / "a.png").write_bytes(png())
    rows = [{"image": "a.png", "input": "Q?", "label": "yes", "answer_type": "CLOSED"},
            {"image": "a.png", "input": "Q?", "label": "yes", "answer_type": "MAYBE"},
            {"image": "a.png", "input": ["not", "text"], "label": "yes", "answer_type": "OPEN"},
            {"id": "0", "image": "a.png", "input": "Q?", "label": "no", "answer_type": "OPEN"},
            {"image": "a.png", "input": "Q?", "label": "no", "answer_type": "OPEN"}]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench = BENCHMARK_CLASSES["slake"](LayoutBenchmarkConfig(source=str(tmp_path)))
    quarantine = Quarantine(tmp_path / "out" / "rejected.jsonl")
    samples = bench.samples(quarantine=quarantine)
    assert [(s.id, s.where) for s in samples] == [("0", f"{tmp_path / 't.jsonl'}:1"), ("4", f"{tmp_path / 't.jsonl'}:5")]
    assert quarantine.counts == {"bad_label": 1, "bad_record": 1, "duplicate_id": 1}
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["where"].rsplit(":", 1)[1], r["id"], r["kind"]) for r in rejected] == [
        ("2", "1", "bad_label"), ("3", "2", "bad_record"), ("4", "0", "duplicate_id")]
    assert rejected[0]["reason"] == "answer_type must be OPEN or CLOSED, got 'MAYBE'"
    assert rejected[2]["reason"] == f"duplicate id '0' (first at {tmp_path / 't.jsonl'}:1)"
    # the error policy stops at the first, naming it
    with pytest.raises(DataError, match=r"t\.jsonl:2: answer_type must be OPEN or CLOSED.*on_bad_record: error"):
        bench.samples(quarantine=Quarantine(None, "error"))


def _hub(monkeypatch, image_value):
    import datasets

    def fake_load_dataset(path, name=None, split=None, revision=None):
        return datasets.Dataset.from_dict({"image": [image_value], "input": ["q"], "label": ["no"]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)


def test_hub_records_may_not_name_host_paths(tmp_path, monkeypatch):
    secret = tmp_path / "secret.png"
    secret.write_bytes(png())
    _hub(monkeypatch, str(secret))
    with pytest.raises(DataError, match=rf"AdaptLLM/x\[C/test\] row 0: image '{secret}' is a path, but hub "
                                        r"records must embed the image bytes"):
        list(read_layout("AdaptLLM/x", config_name="C"))
    _hub(monkeypatch, {"bytes": None, "path": str(secret)})
    seen = []
    assert list(read_layout("AdaptLLM/x", config_name="C", on_error=lambda w, r: seen.append(r))) == []
    assert seen == [f"image '{secret}' is a path, but hub records must embed the image bytes"]
    _hub(monkeypatch, {"bytes": png(), "path": str(secret)})  # embedded bytes: fine, the path is a name only
    [record] = read_layout("AdaptLLM/x", config_name="C")
    assert record.image == png()


def test_an_empty_source_is_an_error_naming_it(tmp_path):
    (tmp_path / "t.jsonl").write_text("")
    with pytest.raises(DataError, match=rf"^{tmp_path}: no records: benchmark 'vqa_rad' has no samples$"):
        BENCHMARK_CLASSES["vqa_rad"](LayoutBenchmarkConfig(source=str(tmp_path))).samples()
    (tmp_path / "t.jsonl").write_text('{"image": "nope.png", "input": "q", "label": "x", "answer_type": "OPEN"}\n')
    quarantine = Quarantine(tmp_path / "r.jsonl")
    with pytest.raises(DataError, match=rf"^{tmp_path}: every record was rejected \(1; see .*r\.jsonl\)"):
        BENCHMARK_CLASSES["vqa_rad"](LayoutBenchmarkConfig(source=str(tmp_path))).samples(quarantine=quarantine)
    assert Path(tmp_path / "r.jsonl").read_text().count("\n") == 1
