"""The demo's row configs name every path relative to the demo folder, so a copied demo folder
runs where it is (``adamllm run COPY/ROW.yaml``), without training anything: the rows are
written next to a copy of the fast world and a tiny stand-in for the general model, copied
elsewhere, the original deleted, and each row validated from the copy; the caption-only row's
data stages then run there (rules synthesizer, no filter: no model needed), and so do the
no-filter ablation row's, which read the method row's synthesized triplets (here a stand-in: the
world's true tasks) instead of synthesizing their own."""
import json
import os
import shutil
import subprocess
import sys

import yaml

from adamllm.config import load_config
from adamllm.domains.toyshapes import truth_triplets
from adamllm.domains.toyshapes.demo import ABLATION_ROWS, METHOD_TRIPLETS, ROWS, DemoSettings, write_row_configs
from adamllm.domains.toyshapes.general_model import GeneralModelSettings
from adamllm.fingerprint import component_dump, flatten
from adamllm.registry import get_plugin_manager
from adamllm.stages import SECTIONS

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def absolute_paths(config) -> list[str]:
    """Every absolute path a validated config holds (its sections, ``data`` and output folder)."""
    values = [str(config.output_dir), *config.data.values()]
    for section in SECTIONS:
        values += list(flatten({section: component_dump(getattr(config, section))}).values())
    return [v for v in values if isinstance(v, str) and os.path.isabs(v)]


def test_a_copied_demo_folder_runs_from_its_own_files(fast_world, tmp_path):
    from adamllm.backbones.tiny import build_tiny

    demo = tmp_path / "demo"
    shutil.copytree(fast_world.root, demo / "world")
    general = build_tiny("qwen2_vl", demo / "general" / "train" / "model", size="tiny")
    rows = ROWS + ABLATION_ROWS
    written = write_row_configs(demo, DemoSettings(fast=True), general, rows)
    assert sorted(p.name for p in written.values()) == sorted(f"{row}.yaml" for row in rows)
    for path in written.values():
        text = path.read_text()
        assert str(tmp_path) not in text
        assert not [s for s in strings(yaml.safe_load(text)) if os.path.isabs(s)], path.name

    copy = tmp_path / "elsewhere" / "demo-copy"
    shutil.copytree(demo, copy)
    shutil.rmtree(demo)
    method = copy / METHOD_TRIPLETS  # what the adamllm row's synthesize stage writes first
    method.parent.mkdir(parents=True)
    truth = [{k: v for k, v in t.items() if k != "family"} for t in truth_triplets(fast_world)]
    method.write_text("".join(json.dumps(t) + "\n" for t in truth))
    pm = get_plugin_manager()
    for row in rows:
        config = load_config(copy / f"{row}.yaml", pm)
        found = absolute_paths(config)
        assert found and all(os.path.realpath(p).startswith(str(copy.resolve()) + os.sep) for p in found), (row, found)
        assert config.backbone.options.model == str((copy / "general" / "train" / "model").resolve())

    result = subprocess.run([sys.executable, "-m", "adamllm.cli", "run", str(copy / "caption-only.yaml"),
                             "stages=[synthesize,filter,compose]"], capture_output=True, text=True, env=ENV,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    compose = copy / "rows" / "caption-only" / "compose"
    mix = [json.loads(line) for line in (compose / "mix.jsonl").read_text().splitlines()]
    assert len(mix) == 160
    assert all((compose / image).is_file() and not os.path.isabs(image) for r in mix for image in r["images"])

    for row in ("two-stage", "no-filter"):  # the ablation rows start from the method row's tasks
        config = load_config(copy / f"{row}.yaml", pm)
        assert config.stages[0] == "filter" and config.data["filter"] == config.data["compose"] == str(method.resolve())
    result = subprocess.run([sys.executable, "-m", "adamllm.cli", "run", str(copy / "no-filter.yaml"),
                             "stages=[filter,compose]"], capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    mix = [json.loads(line) for line in (copy / "rows" / "no-filter" / "compose" / "mix.jsonl").read_text().splitlines()]
    text = {r["id"]: "\n".join(m["content"] for m in r["messages"]) for r in mix}  # task templates vary the turns
    assert len(mix) == 160 and all(t["informative"] in text[t["id"]] for t in truth)


def test_the_general_model_config_is_relative_to_its_folder(fast_world, tmp_path):
    settings = GeneralModelSettings.for_world(fast=True)
    config = settings.run_config(fast_world, tmp_path / "general" / "base", base=tmp_path / "general")
    assert config["backbone"]["model"] == "base"
    assert config["data"]["train"] == os.path.relpath(fast_world.general_mix.resolve(), tmp_path / "general")
    assert not os.path.isabs(config["data"]["train"])
