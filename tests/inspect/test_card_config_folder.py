"""The card of a run whose config leaves paths to a component (the toy domain's declared pairs source
and default benchmarks, ``world/...`` relative to the config's folder) is complete whatever the
current folder: captions and the overlap check are read from the config's folder, which the
fingerprints name (relative to the run folder, so a copied demo folder works), or which is found
from the pairs file for a run whose fingerprints predate that."""
import json
import os
import shutil

import pytest
from click.testing import CliRunner

from adamllm.cli import cli

ROW = """output_dir: rows/row
stages: [synthesize, filter, compose]
domain: {type: toyshapes}
synthesizer: {type: rules}
filter: {type: none}
composer: {type: adamllm}
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A demo-like folder: the toy world, a row config beside it, the row run, and the evaluate
    stage's fingerprint as the runner writes it when the stage starts (it names the benchmarks)."""
    from adamllm.config import load_config
    from adamllm.domains.toyshapes import demo_world
    from adamllm.fingerprint import stage_fingerprint
    from adamllm.registry import get_plugin_manager
    from adamllm.runner import run_pipeline
    from adamllm.stages import stage

    folder = tmp_path_factory.mktemp("card") / "demo"
    demo_world(folder / "world", seed=0, fast=True)
    (folder / "row.yaml").write_text(ROW)
    pm = get_plugin_manager()
    config = load_config(folder / "row.yaml", pm)
    run_pipeline(config, pm, echo=lambda _: None)
    (config.output_dir / "evaluate").mkdir()
    (config.output_dir / "evaluate" / "_running.json").write_text(
        json.dumps(stage_fingerprint(config, stage("evaluate"), [])))
    return folder


def card(run_dir, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    shown = os.path.relpath(run_dir, cwd)  # as a user types it from there
    result = CliRunner().invoke(cli, ["inspect", shown])
    assert result.exit_code == 0, result.output
    return json.loads((run_dir / "card.json").read_text()), result.output


def complete(numbers, output, world):
    assert "unavailable" not in numbers["lengths"]["caption"] and numbers["lengths"]["caption"]["n"] == 160
    assert not [n for n in numbers["notes"] if "captions not shown" in n]
    overlap = numbers["overlap"]
    assert overlap["status"] == "checked", overlap["message"]
    assert sorted(overlap["benchmarks"]) == ["toyshapes_choice", "toyshapes_vqa"]
    assert overlap["benchmark_problems"] == [] and "generate the toy world first" not in output
    assert overlap["train_images"] == 160 and overlap["exact_pairs"] == 0
    for match in overlap["matches"]:  # read from this demo folder's world, not another one
        assert match["benchmark_image"].startswith(str(world))


@pytest.mark.parametrize("where", ["repo root", "the run folder", "the demo folder"])
def test_the_card_is_complete_from_any_folder(demo, tmp_path, monkeypatch, where):
    cwd = {"repo root": tmp_path, "the run folder": demo / "rows" / "row", "the demo folder": demo}[where]
    numbers, output = card(demo / "rows" / "row", cwd, monkeypatch)
    complete(numbers, output, demo / "world")


def test_a_copied_demo_folder_reads_its_own_world(demo, tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(demo, copy)
    numbers, output = card(copy / "rows" / "row", tmp_path, monkeypatch)
    complete(numbers, output, copy / "world")
    assert numbers["run_dir"] == str((copy / "rows" / "row").resolve())


def test_a_run_whose_fingerprints_do_not_name_the_config_finds_it_from_the_pairs_file(demo, tmp_path,
                                                                                      monkeypatch):
    old = tmp_path / "old"
    shutil.copytree(demo, old)
    for marker in (old / "rows" / "row").glob("*/_*.json"):  # as written before fingerprints named the
        data = json.loads(marker.read_text())                   # config: absolute paths, no config_dir
        for fingerprint in (data, data.get("fingerprint") or {}):
            fingerprint.pop("config_file", None)
            fingerprint.pop("config_dir", None)
            fingerprint["inputs"] = {k.replace("$CONFIG_DIR", str(old)): v for k, v in fingerprint.get("inputs", {}).items()}
            fingerprint["config"] = {k: v.replace("$CONFIG_DIR", str(old)) if isinstance(v, str) else v
                                     for k, v in fingerprint.get("config", {}).items()}
        marker.write_text(json.dumps(data))
    numbers, output = card(old / "rows" / "row", tmp_path, monkeypatch)
    complete(numbers, output, old / "world")


def test_the_fingerprint_names_the_config_relative_to_the_run(demo):
    done = json.loads((demo / "rows" / "row" / "synthesize" / "_done.json").read_text())["fingerprint"]
    assert done["config_dir"] == os.path.join("..", "..") and done["config_file"] == str(demo / "row.yaml")
