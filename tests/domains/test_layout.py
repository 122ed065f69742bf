"""The public-layout reader: JSONL, parquet, save_to_disk folders, hub ids, and its errors."""
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from adamllm.benchmark import open_image
from adamllm.domains.layout import read_layout
from adamllm.io import DataError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def png(colour=(10, 20, 30), size=(8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_jsonl_records_and_images_resolved_under_the_folder():
    records = list(read_layout(FIXTURES / "slake"))
    assert [r.index for r in records] == [0, 1, 2, 3]
    assert records[0].data["input"] == "Which organ is abnormal in this image?"
    assert records[0].image == str(FIXTURES / "slake" / "images" / "gray.png")
    assert records[1].where.endswith("test.jsonl:2")
    assert open_image(records[0].image).size == (32, 32)
    assert len(list(read_layout(FIXTURES / "slake", limit=2))) == 2


def test_a_single_file_is_a_source_too():
    records = list(read_layout(FIXTURES / "vqa_rad" / "test.jsonl"))
    assert len(records) == 3 and Path(records[0].image).parent == FIXTURES / "vqa_rad" / "images"


def test_parquet_with_embedded_image_bytes():
    records = list(read_layout(FIXTURES / "pmc_vqa"))
    assert len(records) == 3
    assert isinstance(records[0].image, bytes) and records[0].where.endswith("test.parquet row 0")
    image = open_image(records[0].image)
    assert image.size == (32, 32) and image.convert("RGB").getpixel((0, 0)) == (128, 128, 128)
    assert records[1].data["A"] == "H&E" and records[1].data["label"] == "A"


def test_parquet_with_relative_image_paths(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(png())
    pq.write_table(pa.Table.from_pylist([{"image": "img/a.png", "input": "q", "label": "x"}]), tmp_path / "t.parquet")
    [record] = read_layout(tmp_path)
    assert record.image == str(tmp_path / "img" / "a.png")


def test_image_paths_may_not_leave_the_folder(tmp_path):
    (tmp_path / "outside.png").write_bytes(png())
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "t.jsonl", [{"image": "../outside.png", "input": "q", "label": "x"}])
    with pytest.raises(DataError, match=r"t\.jsonl:1: path '\.\./outside\.png' escapes its root"):
        list(read_layout(data))
    write_jsonl(data / "t.jsonl", [{"image": str(tmp_path / "outside.png"), "input": "q", "label": "x"}])
    with pytest.raises(DataError, match="escapes its root"):
        list(read_layout(data))


def test_bad_lines_are_named(tmp_path):
    (tmp_path / "a.png").write_bytes(png())
    good = {"image": "a.png", "input": "q", "label": "x"}
    write_jsonl(tmp_path / "t.jsonl", [good, "{not json"])
    with pytest.raises(DataError, match=r"t\.jsonl:2: invalid JSON"):
        list(read_layout(tmp_path))
    write_jsonl(tmp_path / "t.jsonl", [good, good, {"image": "a.png", "input": "q"}])
    with pytest.raises(DataError, match=r"t\.jsonl:3: missing field\(s\) label"):
        list(read_layout(tmp_path))
    write_jsonl(tmp_path / "t.jsonl", [{"image": "missing.png", "input": "q", "label": "x"}])
    with pytest.raises(DataError, match=r"t\.jsonl:1: image 'missing.png' not found"):
        list(read_layout(tmp_path))


def test_empty_folder_and_unknown_source(tmp_path):
    with pytest.raises(DataError, match="no \\*.jsonl or \\*.parquet files"):
        list(read_layout(tmp_path))
    with pytest.raises(DataError, match="neither a local folder or file nor a hub dataset id"):
        list(read_layout("./no/such/folder/"))


def test_save_to_disk_folder_with_an_image_feature(tmp_path):
    import datasets

    features = datasets.Features({"image": datasets.Image(), "input": datasets.Value("string"),
                                  "label": datasets.Value("string")})
    rows = {"image": [{"bytes": png(), "path": "x.png"}], "input": ["q?"], "label": ["yes"]}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "SLAKE"))
    [record] = read_layout(tmp_path / "SLAKE")
    assert isinstance(record.image, bytes) and open_image(record.image).size == (8, 6)
    assert record.where.endswith("row 0")


def test_hub_ids_go_through_datasets_load_dataset(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None, revision=None):
        calls.append((path, name, split, revision))
        return datasets.Dataset.from_dict({"image": [{"bytes": png(), "path": None}], "input": ["q"], "label": ["no"]},
                                          features=datasets.Features({"image": datasets.Image(),
                                                                      "input": datasets.Value("string"),
                                                                      "label": datasets.Value("string")}))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    [record] = read_layout("AdaptLLM/biomed-VQA-benchmark", config_name="PathVQA", split="test")
    assert calls == [("AdaptLLM/biomed-VQA-benchmark", "PathVQA", "test", None)]
    assert isinstance(record.image, bytes) and record.where == "AdaptLLM/biomed-VQA-benchmark[PathVQA/test] row 0"

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="cannot load hub dataset 'AdaptLLM/x'.*set the benchmark's source to a folder"):
        list(read_layout("AdaptLLM/x", config_name="C"))
