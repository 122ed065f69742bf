"""Seed images in the two layouts users have: ALLaVA's download layout (the caption file's full
relative paths, ``allava_vflan/images/images_191task_1k/xxx.png``, under its top folder) and the
flat folder the reference documents (the image root is ``images_191task_1k`` itself, files joined
by base name). Both give the same seed records and tune on the same conversations."""
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from adamllm.io import DataError
from adamllm.plugins.synthesis.seed import read_seeds
from adamllm.quarantine import Quarantine

ALLAVA = "allava_vflan/images/images_191task_1k"
SHAPES = ("square", "circle", "star", "cross", "ring", "arrow", "heart", "moon", "cloud", "drop")
COLOURS = ("red", "blue", "green", "white", "black", "orange", "purple", "yellow", "pink", "grey")


def human(value):
    return {"from": "human", "value": value}


def gpt(value):
    return {"from": "gpt", "value": value}


def write_seed_files(folder: Path, n: int = 10) -> list[str]:
    """The three seed files (JSON arrays, pretty-printed) for ``n`` images, their caption entries
    naming ALLaVA's full relative paths and the QA entries VisionFLAN's; the image names."""
    folder.mkdir(parents=True)
    names = [f"vflan_{i:03d}.png" for i in range(n)]
    captions, precise, informative = [], [], []
    for name, shape, colour in zip(names, SHAPES, COLOURS):
        caption = f"A {colour} {shape} on a grey background."
        captions.append({"image": f"{ALLAVA}/{name}", "caption": caption,
                         "conversations": [human("<image>\nCaption it."), gpt(caption)]})
        precise.append({"image": f"images_191task_1k/shape_task/{name}", "task_name": "shape_task",
                        "conversations": [human("<image>\nWhat shape is it?"), gpt(shape.title() + ".")]})
        precise.append({"image": f"images_191task_1k/colour_task/{name}", "task_name": "colour_task",
                        "conversations": [human("What colour is it?\n<image>"), gpt(colour.title() + ".")]})
        informative.append({"image": f"{ALLAVA}/{name}", "conversations": [
            human("<image>\nWhat is drawn, and how can you tell?"),
            gpt(f"The outline is that of a {shape}, filled in {colour}, so it is a {colour} {shape}.")]})
    for file, entries in (("captions.json", captions), ("precise.json", precise), ("informative.json", informative)):
        (folder / file).write_text(json.dumps(entries, indent=2))
    return names


def write_images(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (28 + 2 * i, 28), COLOURS[i % len(COLOURS)]).save(folder / name)
    return folder


@pytest.fixture
def layouts(tmp_path):
    """The same seed data twice: ``download`` (root = the ALLaVA top folder) and ``flat`` (root =
    a folder of the image files alone)."""
    names = write_seed_files(tmp_path / "seeds")
    download = tmp_path / "allava"
    write_images(download / ALLAVA, names)
    flat = tmp_path / "flat" / "images_191task_1k"
    shutil.copytree(download / ALLAVA, flat)
    files = {key: tmp_path / "seeds" / f"{key}.json" for key in ("captions", "precise", "informative")}
    return {"files": files, "download": download, "flat": flat, "names": names}


def _content(record) -> dict:
    data = record.model_dump()
    image = Path(data.pop("image"))
    return {**data, "image": (image.name, image.read_bytes())}


def test_both_layouts_give_the_same_seed_records(layouts):
    by_path = read_seeds(**layouts["files"], image_root=layouts["download"])
    by_name = read_seeds(**layouts["files"], image_root=layouts["flat"])
    assert len(by_path.records) == len(layouts["names"]) == 10
    assert by_path.records[0].image == str((layouts["download"] / ALLAVA / "vflan_000.png").resolve())
    assert by_name.records[0].image == str((layouts["flat"] / "vflan_000.png").resolve())
    assert [_content(r) for r in by_path.records] == [_content(r) for r in by_name.records]
    assert by_path.stats["images_by_base_name"] == 0 and by_name.stats["images_by_base_name"] == 10
    assert {k: v for k, v in by_path.stats.items() if k != "images_by_base_name"} == \
        {k: v for k, v in by_name.stats.items() if k != "images_by_base_name"}


def test_a_base_name_shared_by_two_files_is_set_aside_naming_both(layouts, tmp_path):
    flat = layouts["flat"]
    (flat / "other_task").mkdir()
    shutil.copy(flat / "vflan_003.png", flat / "other_task" / "vflan_003.png")
    quarantine = Quarantine(tmp_path / "rejected.jsonl", "skip")
    with quarantine:
        data = read_seeds(**layouts["files"], image_root=flat, quarantine=quarantine)
    assert [r.id for r in data.records] == [n for n in layouts["names"] if n != "vflan_003.png"]
    (entry,) = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert entry["kind"] == "ambiguous_image" and re.search(r"captions\.json:\d+$", entry["where"])
    assert "names 2 files there: other_task/vflan_003.png, vflan_003.png" in entry["reason"]
    with pytest.raises(DataError, match=r"captions\.json:\d+: image '.*/vflan_003\.png' not found under .*, and its "
                                        r"base name 'vflan_003\.png' names 2 files there: other_task/vflan_003\.png, "
                                        r"vflan_003\.png"):
        read_seeds(**layouts["files"], image_root=flat)
    # the ALLaVA layout finds its files as written: no lookup, no ambiguity
    shutil.copy(flat / "vflan_003.png", layouts["download"] / "vflan_003.png")
    assert len(read_seeds(**layouts["files"], image_root=layouts["download"]).records) == 10


def test_a_file_missing_from_both_layouts_is_named(layouts):
    (layouts["flat"] / "vflan_005.png").unlink()
    quarantine = Quarantine(None, "skip")
    data = read_seeds(**layouts["files"], image_root=layouts["flat"], quarantine=quarantine)
    assert len(data.records) == 9 and quarantine.counts == {"missing_image": 1}


def _tune(config: Path, pm) -> list[dict]:
    from adamllm.config import load_config
    from adamllm.runner import run_pipeline

    said: list[str] = []
    run_pipeline(load_config(config, pm), pm, echo=said.append)
    lines = (config.parent / config.stem / "tune" / "seed_conversations.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines], said


def test_both_layouts_tune_on_the_same_seed_conversations(layouts, tmp_path):
    from adamllm.registry import PluginManager

    pm = PluginManager(no_plugins=True)
    common = ("seed: 3\nstages: [tune]\ntrainer: {type: sft, max_steps: 1}\n"
              "synthesizer: {type: adamllm, model: {type: qwen2_vl, model: base, tiny: tiny}}\n")
    download = tmp_path / "download.yaml"
    download.write_text(f"output_dir: download\n{common}data: {{tune: {{path: seeds, images: allava}}}}\n")
    flat = tmp_path / "flat.yaml"
    flat.write_text(f"output_dir: flat\n{common}data: {{tune: {{path: seeds, images: flat/images_191task_1k}}}}\n")
    by_path, said_path = _tune(download, pm)
    by_name, said_name = _tune(flat, pm)
    assert len(by_path) == 10 and sum(r["images"][0].endswith("blank.png") for r in by_path) == 1  # round(0.1 * 10)

    def content(records):
        return [{**r, "images": [(Path(i).name, Path(i).read_bytes()) for i in r["images"]]} for r in records]

    assert content(by_path) == content(by_name)
    assert by_path[0]["images"] != by_name[0]["images"] or by_path[0]["images"][0].endswith("blank.png")
    assert any("10 seed images found by base name" in line for line in said_name)
    assert not any("found by base name" in line for line in said_path)

    # another image folder is another input: the stage reruns, and the conversations stay the same
    download.write_text(download.read_text().replace("images: allava}", "images: flat/images_191task_1k}"))
    again, said = _tune(download, pm)
    assert any("[tune] rerunning from scratch" in line and "data.tune.images" in line for line in said), said
    assert content(again) == content(by_path)
