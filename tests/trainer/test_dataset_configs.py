"""Training data from a dataset with several configs, as the released hub repos hold them
(``AdaptLLM/biomed-visual-instructions``: ``image_caption_and_synthetic_task``,
``image_caption_pairs``, ``synthetic_visual_tasks``, three differently shaped files). No hub is
reachable here, so the repo is a local folder laid out the same way: a README.md whose YAML front
matter declares the configs, the files, and ``images/`` holding the files the records name bare."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from adamllm.io import DataError
from adamllm.plugins.sft.data import load_records

CONFIGS = ("image_caption_and_synthetic_task", "image_caption_pairs", "synthetic_visual_tasks")
README = """---
license: apache-2.0
configs:
- config_name: image_caption_and_synthetic_task
  data_files: image_caption_and_synthetic_task.json
- config_name: image_caption_pairs
  data_files: image_caption_pairs.json
- config_name: synthetic_visual_tasks
  data_files: synthetic_visual_tasks.json
---
# biomed visual instructions (a local copy laid out as the hub repo)
"""
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")


def write_repo(folder: Path) -> Path:
    (folder / "images").mkdir(parents=True)
    mix, pairs, tasks = [], [], []
    for i, colour in enumerate(COLOURS):
        name = f"pmc_{i}.png"
        Image.new("RGB", (32, 32 + 8 * (i % 2)), colour).save(folder / "images" / name)
        caption = [{"role": "user", "content": "<image>Describe the figure."},
                   {"role": "assistant", "content": f"A {colour} patch."}]
        task = [{"role": "user", "content": "What colour is it?"}, {"role": "assistant", "content": colour}]
        mix.append({"images": [name], "messages": caption + task if i % 2 else caption})
        pairs.append({"images": [name], "messages": caption})
        tasks.append({"image": name, "instruction": "What colour is it?", "precise": colour,
                      "informative": f"The patch is {colour}, so the answer is {colour}."})
    (folder / "README.md").write_text(README)
    (folder / "image_caption_and_synthetic_task.json").write_text(json.dumps(mix, indent=2))
    (folder / "image_caption_pairs.json").write_text(json.dumps(pairs[:4], indent=2))
    (folder / "synthetic_visual_tasks.json").write_text(json.dumps(tasks, indent=2))
    return folder


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return write_repo(tmp_path_factory.mktemp("hub") / "biomed-visual-instructions")


def test_the_named_config_is_loaded_and_its_bare_image_names_resolve_in_images(repo):
    said = []
    records, root = load_records(repo, config="image_caption_and_synthetic_task", note=said.append)
    assert root == repo and len(records) == 6
    assert [r["images"] for r in records] == [[f"images/pmc_{i}.png"] for i in range(6)]  # under the root
    assert [len(r["messages"]) for r in records] == [2, 4, 2, 4, 2, 4]
    assert records[0]["_where"] == f"{repo}[0]" and records[1]["id"] == "1"
    assert len(said) == 1 and "sibling images/ folder" in said[0]

    pairs, _ = load_records(repo, config="image_caption_pairs")
    assert len(pairs) == 4  # another config, another file
    by_file, _ = load_records(repo, data_files="image_caption_pairs.json")
    assert [r["messages"] for r in by_file] == [r["messages"] for r in pairs]


def test_an_image_root_is_used_as_given(repo, tmp_path):
    records, root = load_records(repo, config="image_caption_and_synthetic_task", image_root=tmp_path)
    assert root == tmp_path and records[0]["images"] == ["pmc_0.png"]


def test_a_config_of_another_shape_is_quarantined_record_by_record(repo):
    from adamllm.quarantine import Quarantine

    quarantine = Quarantine(None, "skip")
    records, _ = load_records(repo, config="synthetic_visual_tasks", quarantine=quarantine)
    assert records == [] and quarantine.counts == {"bad_record": 6}


@pytest.mark.parametrize("config, message", [
    ("nope", "dataset '{repo}' has no config 'nope'; its configs: " + ", ".join(CONFIGS)),
    (None, "dataset '{repo}' has 3 configs: " + ", ".join(CONFIGS) + "; name one"),
])
def test_a_bad_or_missing_config_name_is_one_line_listing_the_configs(repo, config, message):
    with pytest.raises(DataError) as info:
        load_records(repo, config=config)
    assert "\n" not in str(info.value) and str(info.value).startswith(message.format(repo=repo))


def test_dataset_options_on_a_file_are_refused(repo, tmp_path):
    with pytest.raises(DataError, match="config pick part of a dataset"):
        load_records(repo / "image_caption_pairs.json", config="image_caption_pairs")


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})


def test_train_stage_on_a_named_config_and_its_fingerprint(repo, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: out\nseed: 1\nstages: [train]\n"
                      "backbone: {type: qwen2_vl, model: base, tiny: tiny}\n"
                      "trainer: {type: sft, batch_size: 2, max_steps: 1}\n"
                      f"data: {{train: {{path: {repo}, config: image_caption_and_synthetic_task}}}}\n")
    result = run_cli("run", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[train] image paths of" in result.stdout and "sibling images/ folder" in result.stdout
    summary = json.loads((tmp_path / "out" / "train" / "summary.json").read_text())
    assert summary["samples"] == 6 and summary["steps"] == 1
    done = json.loads((tmp_path / "out" / "train" / "_done.json").read_text())
    assert done["fingerprint"]["config"]["data.train.config"] == "image_caption_and_synthetic_task"
    assert done["fingerprint"]["config"]["data.train.path"] == str(repo)

    other = run_cli("run", str(config), "data.train.config=image_caption_pairs", cwd=tmp_path)
    assert other.returncode == 0, other.stderr[-3000:]
    assert ("[train] rerunning from scratch, it changed since it last ran: data.train.config: "
            "image_caption_and_synthetic_task -> image_caption_pairs") in other.stdout
    assert json.loads((tmp_path / "out" / "train" / "summary.json").read_text())["samples"] == 4

    bad = run_cli("run", str(config), "data.train.config=nope", cwd=tmp_path)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert f"dataset '{repo}' has no config 'nope'; its configs: {', '.join(CONFIGS)}" in bad.stderr


def test_the_presets_name_the_training_config_of_their_domains_hub_repo():
    from adamllm.config import load_config
    from adamllm.registry import PluginManager

    presets = sorted((Path(__file__).resolve().parents[2] / "examples" / "presets").glob("*.yaml"))
    trained = 0
    for preset in presets:
        cfg = load_config(preset, PluginManager(no_plugins=True))
        if "train" not in cfg.data:
            continue
        given = cfg.data_inputs["train"]
        assert given.hub == f"AdaptLLM/{cfg.domain.type}-visual-instructions", preset.name
        assert given.config == "image_caption_and_synthetic_task", preset.name
        trained += 1
    assert trained == 4  # the paper's four backbone settings (food: Llama-3.2-11B)


def test_streamed_records_of_a_named_config_are_the_loaded_ones(repo):
    """``streaming: true`` reads the dataset (memory-mapped Arrow) record by record: the same
    records, image paths and ids as loading it whole; a config of another shape is refused per record."""
    from adamllm.plugins.sft.streaming import StreamedRecords

    loaded, root = load_records(repo, config="image_caption_and_synthetic_task")
    said = []
    streamed = StreamedRecords(repo, config="image_caption_and_synthetic_task", note=said.append)
    assert streamed.root == root and len(streamed) == 6 and len(said) == 0  # said when a record is read
    assert [streamed.get(i) for i in range(6)] == loaded and len(said) == 1
    other = StreamedRecords(repo, config="synthetic_visual_tasks")
    with pytest.raises(DataError, match=r"\[0\]: messages: Field required"):
        other.get(0)
    with pytest.raises(DataError, match="has no config 'nope'"):
        StreamedRecords(repo, config="nope")
