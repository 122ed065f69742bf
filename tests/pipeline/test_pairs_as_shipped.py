"""Image-caption pairs laid out as the paper's data ship: a pretty-printed JSON array naming bare
files, the images in the sibling ``images/`` folder (the hub repos' ``images/*.zip``, unzipped);
or an image folder named in the config (``data.synthesize.images``, the domain's ``images``).
Synthesize and compose resolve them identically, confined to their root, and a changed image
folder reruns both."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from adamllm.io import DataError
from adamllm.pairs import PairStats, pair_id, read_pairs
from adamllm.quarantine import Quarantine

COLOURS = ("red", "green", "blue", "yellow")
NOTICE = "image paths of image_caption_pairs.json are not beside it: reading them from its sibling images/ folder"


def write_released_pairs(folder: Path, n: int = 4) -> Path:
    """As released: ``image_caption_pairs.json`` (a pretty-printed JSON array of ShareGPT records
    naming bare files) beside ``images/`` holding real PNGs."""
    (folder / "images").mkdir(parents=True)
    records = []
    for i, colour in enumerate(COLOURS[:n]):
        name = f"pmc_{i}.png"
        Image.new("RGB", (32 + 8 * i, 32), colour).save(folder / "images" / name)
        records.append({"images": [name], "messages": [
            {"role": "user", "content": "<image>\nDescribe the figure."},
            {"role": "assistant", "content": f"A {colour} square on a plain background."}]})
    path = folder / "image_caption_pairs.json"
    path.write_text(json.dumps(records, indent=2) + "\n")
    return path


def run_cli(*args, cwd: Path, env: dict | None = None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


def test_bare_names_resolve_in_the_sibling_images_folder_said_once_and_counted(tmp_path):
    path = write_released_pairs(tmp_path / "released")
    said = []
    stats = PairStats(quarantine=Quarantine(None, "error"), note=said.append)
    pairs = [pair for _, pair in read_pairs(path, stats=stats)]
    assert [p.image for p in pairs] == [str(tmp_path / "released" / "images" / f"pmc_{i}.png") for i in range(4)]
    assert pairs[0].id == pair_id("pmc_0.png", "A red square on a plain background.")  # the path as written
    assert stats.read == 4 and stats.in_images_folder == 4
    assert len(said) == 1 and said[0].startswith(NOTICE)


def test_a_name_beside_the_file_wins_and_no_notice_is_given(tmp_path):
    path = write_released_pairs(tmp_path / "released", n=2)
    shutil.copy(tmp_path / "released" / "images" / "pmc_0.png", tmp_path / "released" / "pmc_0.png")
    said = []
    stats = PairStats(note=said.append)
    images = [pair.image for _, pair in read_pairs(path, stats=stats)]
    assert images == [str(tmp_path / "released" / "pmc_0.png"), str(tmp_path / "released" / "images" / "pmc_1.png")]
    assert stats.in_images_folder == 1 and len(said) == 1


def test_an_image_root_confines_paths_to_it(tmp_path):
    path = write_released_pairs(tmp_path / "released", n=2)
    root = tmp_path / "unzipped"
    shutil.move(tmp_path / "released" / "images", root)
    (tmp_path / "secret.png").write_bytes((root / "pmc_0.png").read_bytes())
    records = json.loads(path.read_text())
    records.append({**records[0], "images": ["../secret.png"]})  # exists, but outside the root
    records.append({**records[0], "images": [str(tmp_path / "secret.png")]})  # absolute, outside the root
    records.append({**records[0], "images": ["nowhere.png"]})
    path.write_text(json.dumps(records, indent=2))
    stats = PairStats(quarantine=Quarantine(None, "skip"))
    pairs = [pair for _, pair in read_pairs(path, image_root=root, stats=stats)]
    assert [p.image for p in pairs] == [str(root / "pmc_0.png"), str(root / "pmc_1.png")]
    assert stats.quarantine.counts == {"path_escape": 2, "missing_image": 1} and stats.in_images_folder == 0
    with pytest.raises(DataError, match=r"image_caption_pairs\.json:\d+: path '\.\./secret\.png' escapes its root"):
        list(read_pairs(path, image_root=root))


def test_without_a_root_paths_stay_inside_the_files_folder(tmp_path):
    path = write_released_pairs(tmp_path / "released", n=1)
    (tmp_path / "outside.png").write_bytes((tmp_path / "released" / "images" / "pmc_0.png").read_bytes())
    records = json.loads(path.read_text())
    path.write_text(json.dumps([{**records[0], "images": ["../outside.png"]}], indent=2))
    with pytest.raises(DataError, match="escapes its root"):
        list(read_pairs(path))
    path.write_text(json.dumps([{**records[0], "images": ["missing.png"]}], indent=2))
    with pytest.raises(DataError, match=r"image 'missing\.png' not found under .*released \(nor in its images/ "):
        list(read_pairs(path))


def test_a_plugin_reader_without_image_root_is_refused_only_when_a_root_is_set(tmp_path):
    path = write_released_pairs(tmp_path / "released", n=1)

    def old_reader(path, stats=None):
        from adamllm.pairs import read_conversation_pairs

        return read_conversation_pairs(path, stats)

    assert len(list(read_pairs(path, "old", old_reader))) == 1
    with pytest.raises(DataError, match="takes no image_root"):
        list(read_pairs(path, "old", old_reader, image_root=tmp_path / "released" / "images"))


CONFIG = ("output_dir: out\nstages: [synthesize, filter, compose]\nsynthesizer: {type: rules}\n"
          "filter: {type: none}\ncomposer: {type: adamllm}\n")


def _mix(out: Path) -> dict:
    """id -> (base name, bytes) of each mix record's image (the mix names its own copies, relative to it)."""
    mix = out / "compose"
    return {r["id"]: [(Path(i).name, (mix / i).read_bytes()) for i in r["images"]]
            for r in map(json.loads, (mix / "mix.jsonl").read_text().splitlines())}


def _triplets(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "synthesize" / "triplets.jsonl").read_text().splitlines()]


def _as_read(paths: dict) -> dict:
    return {k: [(Path(p).name, Path(p).read_bytes())] for k, p in paths.items()}


def test_synthesize_and_compose_read_the_released_layout_then_rerun_for_another_image_folder(tmp_path):
    pairs = write_released_pairs(tmp_path / "released")
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG + "data: {synthesize: released/image_caption_pairs.json}\n")
    first = run_cli("run", str(config), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    for stage in ("synthesize", "compose"):  # said once by each stage that reads the pairs
        assert first.stdout.count(f"[{stage}] {NOTICE}") == 1, first.stdout
        stats = json.loads((tmp_path / "out" / stage / "stats.json").read_text())
        assert stats["pairs_read"] == 4 and stats["pair_images_in_images_folder"] == 4 and stats["rejected"] == 0
    triplets = _triplets(tmp_path / "out")
    assert len(triplets) == 4
    images = {t["id"]: t["image"] for t in triplets}
    assert sorted(images.values()) == [str(pairs.parent / "images" / f"pmc_{i}.png") for i in range(4)]
    assert _mix(tmp_path / "out") == _as_read(images)  # compose resolved every pair as synthesize did

    # the same images unzipped elsewhere, named in the config: both stages rerun, ids unchanged
    shutil.copytree(tmp_path / "released" / "images", tmp_path / "unzipped")
    config.write_text(CONFIG + "data: {synthesize: {path: released/image_caption_pairs.json, images: unzipped}}\n")
    second = run_cli("run", str(config), cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "[synthesize] rerunning from scratch" in second.stdout and "data.synthesize.images" in second.stdout
    assert "[compose] rerunning from scratch" in second.stdout and NOTICE not in second.stdout
    triplets = _triplets(tmp_path / "out")
    moved = {t["id"]: t["image"] for t in triplets}
    assert moved == {k: str(tmp_path / "unzipped" / Path(v).name) for k, v in images.items()}
    assert _mix(tmp_path / "out") == _as_read(moved)
    again = run_cli("run", str(config), cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("already done") == 3, again.stdout


def test_compose_alone_reruns_when_only_the_image_folder_changes(tmp_path):
    from adamllm.config import load_config
    from adamllm.fingerprint import stage_fingerprint
    from adamllm.registry import PluginManager
    from adamllm.runner import StageContext
    from adamllm.stages import stage

    write_released_pairs(tmp_path / "released")
    shutil.copytree(tmp_path / "released" / "images", tmp_path / "unzipped")
    config = tmp_path / "run.yaml"
    pm = PluginManager(no_plugins=True)
    prints = {}
    for name, data in (("default", "released/image_caption_pairs.json"),
                       ("root", "{path: released/image_caption_pairs.json, images: unzipped}")):
        config.write_text(CONFIG + f"data: {{synthesize: {data}}}\n")
        cfg = load_config(config, pm)
        prints[name] = stage_fingerprint(cfg, stage("compose"), StageContext("compose", cfg, pm).input_paths())
        assert StageContext("compose", cfg, pm).pair_images_root() == (
            tmp_path / ("unzipped" if name == "root" else "released"))
    # (paths inside the config's folder are written relative to it: a copied run is the same run)
    assert prints["default"]["config"]["data.synthesize"] == "$CONFIG_DIR/released/image_caption_pairs.json"
    assert prints["root"]["config"]["data.synthesize.images"] == "$CONFIG_DIR/unzipped"
    assert prints["default"]["config"] != prints["root"]["config"]


def _recipes(folder: Path) -> None:
    (folder / "images").mkdir(parents=True)
    records = []
    for i, colour in enumerate(COLOURS[:3]):
        Image.new("RGB", (40, 32), colour).save(folder / "images" / f"r{i}.jpg")
        records.append({"id": f"r{i}", "image": f"r{i}.jpg", "title": f"{colour.title()} soup",
                        "ingredients": [{"text": colour}, {"text": "water"}], "instructions": ["Boil."]})
    (folder / "recipe1m_pairs.json").write_text(json.dumps(records, indent=2))


def test_the_food_domains_recipe_source_reads_the_same_layout(tmp_path):
    _recipes(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: out\nstages: [synthesize]\nsynthesizer: {type: rules}\n"
                      "domain: {type: food, source: recipe1m}\n")
    result = run_cli("run", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[synthesize] image paths of recipe1m_pairs.json are not beside it" in result.stdout
    stats = json.loads((tmp_path / "out" / "synthesize" / "stats.json").read_text())
    assert stats["pairs_read"] == 3 and stats["pair_images_in_images_folder"] == 3 and stats["rejected"] == 0

    shutil.move(tmp_path / "images", tmp_path / "photos")  # the domain section names the folder
    config.write_text(config.read_text().replace("source: recipe1m}", "source: recipe1m, images: photos}"))
    result = run_cli("run", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rerunning from scratch" in result.stdout and "domain.images" in result.stdout
    progress = (tmp_path / "out" / "synthesize" / "triplets.jsonl").read_text()
    assert str(tmp_path / "photos" / "r0.jpg") in progress


def test_the_biomed_hub_source_with_its_images_unzipped_elsewhere(tmp_path):
    """The biomed domain's default source, a hub file (here already in the hub cache, as after a
    download), names bare files; the domain's ``images`` says where they were unzipped."""
    repo = tmp_path / "hub" / "datasets--AdaptLLM--biomed-visual-instructions"
    snapshot = repo / "snapshots" / "0123abcd"
    write_released_pairs(snapshot)
    shutil.move(snapshot / "images", tmp_path / "pmc_images")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: out\nstages: [synthesize]\nsynthesizer: {type: rules}\n"
                      "domain: {type: biomed, images: pmc_images}\n")
    result = run_cli("run", str(config), cwd=tmp_path, env={"HF_HUB_CACHE": str(tmp_path / "hub")})
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((tmp_path / "out" / "synthesize" / "stats.json").read_text())
    assert stats["pairs_read"] == 4 and stats["triplets"] == 4 and stats["rejected"] == 0
    assert str(tmp_path / "pmc_images" / "pmc_0.png") in [t["image"] for t in _triplets(tmp_path / "out")]
