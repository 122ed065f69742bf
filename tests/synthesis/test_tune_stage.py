"""The tune stage through `adamllm run`: seed folder → seed conversations → a tuned synthesizer model.

The synthesizer section comes from a small third-party test plugin (installed as pip would, via an
entry point on PYTHONPATH) whose options hold a model slot: the stage only needs that slot.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adamllm.io import DataError
from adamllm.testing.data import write_seed_folder
from adamllm.testing.distributions import fake_distribution
from adamllm.plugins.synthesis.tuning import seed_layout

PLUGIN = '''
from pydantic import BaseModel, ConfigDict

from adamllm import hookimpl
from adamllm.backbone import ModelSlot
from adamllm.specs import SynthesizerSpec


class SlotOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: ModelSlot


class SlotSynth:
    def __init__(self, config):
        self.config = config

    def synthesize(self, pairs, ctx):
        return [None for _ in pairs]


@hookimpl
def adamllm_synthesizers():
    return [SynthesizerSpec(name="slot_synth", factory="adamllm_test_tune.plugin:SlotSynth",
                            config="adamllm_test_tune.plugin:SlotOptions", description="a model slot only")]
'''


def install_plugin(site: Path) -> None:
    fake_distribution(site, "adamllm-test-tune", version="0.1",
                      modules={"adamllm_test_tune.__init__": "", "adamllm_test_tune.plugin": PLUGIN},
                      entry_points={"adamllm-test-tune": "adamllm_test_tune.plugin"})


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    install_plugin(site)
    return site


def run_cli(site: Path, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          timeout=600, env=env)


CONFIG = ("output_dir: out\nseed: 1\nstages: [tune]\n"
          "synthesizer: {type: slot_synth, model: {type: qwen2_vl, model: base, tiny: tiny}}\n"
          "trainer: {type: sft, max_steps: 2, learning_rate: 0.003}\n")


def tuned_model(config_path: Path, site: Path):
    """StageContext.tuned_synthesizer_model() of the config, in a process that sees the plugin."""
    code = ("import sys; from adamllm.config import load_config; from adamllm.registry import PluginManager; "
            "from adamllm.runner import StageContext; pm = PluginManager(); "
            "cfg = load_config(sys.argv[1], pm); print(StageContext('synthesize', cfg, pm).tuned_synthesizer_model())")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code, str(config_path)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_tune_stage_writes_conversations_and_a_loadable_tuned_model(tmp_path, site):
    write_seed_folder(tmp_path / "seed")
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG + "data: {tune: seed}\n")
    first = run_cli(site, "run", str(config))
    assert first.returncode == 0, first.stderr[-3000:]
    out = tmp_path / "out" / "tune"
    lines = (out / "seed_conversations.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == ["a.png", "b.png", "c.png"]  # d has no informative pair
    assert records[1]["messages"][:2] == [{"role": "user", "content": "<image>Describe the image."},
                                          {"role": "assistant", "content": "A blue circle on a grey background."}]
    assert records[1]["images"] == [str((tmp_path / "seed" / "images" / "vflan" / "b.png").resolve())]
    assert sorted(m["content"] for m in records[1]["messages"][2::2]) == [
        "Answer with a precise response.\nWhat colour is it?",
        "Answer with an informative response.\nWhat shape is it, and why?"]
    assert "[tune] 3 seed conversations (0 with a blank image, 0 held out) from 3 of 4 captioned images" \
        in first.stdout  # round(0.1 * 3) = 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["samples"] == 3
    info = json.loads((out / "run_info.json").read_text())
    assert info["config"]["label_policy"] == "after_first_turn" and info["base_model"] == str(tmp_path / "base")
    done = json.loads((out / "_done.json").read_text())
    assert done["model_dir"] == str(out / "model") and done["seeds"]["no_informative_pair"] == 1

    from adamllm.backbones.families import Qwen2VLAdapter

    adapter = Qwen2VLAdapter.from_pretrained(out / "model")
    assert adapter.model is not None and adapter.tokenizer.chat_template
    assert tuned_model(config, site) == str(out / "model")

    again = run_cli(site, "run", str(config))
    assert again.returncode == 0 and "[tune] already done" in again.stdout
    assert (out / "seed_conversations.jsonl").read_text().splitlines() == lines


def test_tune_stage_without_seed_data_is_skipped(tmp_path, site):
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    result = run_cli(site, "run", str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no seed data (data.tune); using the synthesizer model as given" in result.stdout
    assert not (tmp_path / "out" / "tune" / "model").exists() and not (tmp_path / "base").exists()
    assert tuned_model(config, site) == "None"


def test_seed_folder_with_a_manifest_keeps_the_released_file_names(tmp_path):
    names = ("ALLaVA-Caption-VFLAN-4V.json", "annotation_191-task_1k.json", "ALLaVA-Instruct-VFLAN-4V.json", "imgs")
    folder = write_seed_folder(tmp_path / "seed", names)
    with pytest.raises(DataError, match="no captions file captions.json"):
        seed_layout(folder)
    (folder / "tune.yaml").write_text(f"captions: {names[0]}\nprecise: {names[1]}\ninformative: {names[2]}\n"
                                      f"image_root: {names[3]}\nblank_ratio: 0.5\n")
    layout = seed_layout(folder)
    assert layout["captions"] == (folder / names[0]).resolve() and layout["image_root"] == (folder / "imgs").resolve()
    assert layout["blank_ratio"] == 0.5 and layout["dev_ratio"] == 0.0 and layout["mismatch_ratio"] == 0.0
    (folder / "tune.yaml").write_text(f"captions: {names[0]}\nprecise: {names[1]}\ninformative: {names[2]}\n"
                                      f"image_root: {names[3]}\nblank_ratio: 0.5\nmismatch_ratio: 0.75\n")
    with pytest.raises(DataError, match="blank_ratio \\+ mismatch_ratio must be at most 1"):
        seed_layout(folder)
    (folder / "tune.yaml").write_text("captions: ../../elsewhere.json\n")
    with pytest.raises(DataError, match="escapes its root"):
        seed_layout(folder)
    (folder / "tune.yaml").write_text("caption: x.json\n")
    with pytest.raises(DataError, match="unknown key"):
        seed_layout(folder)


def test_tuning_options_of_the_synthesizer_override_the_trainer_section_for_tune_only(tmp_path, site):
    write_seed_folder(tmp_path / "seed")
    config = tmp_path / "run.yaml"
    synth = ("synthesizer: {type: adamllm, model: {type: qwen2_vl, model: base, tiny: tiny},\n"
             "              tuning: {max_steps: 1, learning_rate: 0.01}}\n")
    config.write_text(CONFIG.replace(CONFIG.splitlines()[3] + "\n", synth) + "data: {tune: seed}\n")
    result = run_cli(site, "run", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out" / "tune"
    assert json.loads((out / "summary.json").read_text())["steps"] == 1  # the trainer section says 2
    info = json.loads((out / "run_info.json").read_text())["config"]
    assert info["learning_rate"] == 0.01 and info["max_steps"] == 1 and info["label_policy"] == "after_first_turn"

    bad = run_cli(site, "run", str(config), "synthesizer.tuning.max_steps=-3")
    assert bad.returncode != 0
    assert "synthesizer.tuning.max_steps" in bad.stderr and "Traceback" not in bad.stderr
    assert "[tune] rerunning from scratch" in bad.stdout  # the tuning options are part of its fingerprint


def test_a_two_stage_trainer_section_still_tunes_the_synthesizer_in_one_stage(tmp_path, site):
    # the two-stage ablation's run config: two_stage is the target model's schedule
    write_seed_folder(tmp_path / "seed")
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG.replace("learning_rate: 0.003}", "learning_rate: 0.003, two_stage: true}")
                      + "data: {tune: seed}\n")
    result = run_cli(site, "run", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[tune] training in one stage" in result.stdout
    info = json.loads((tmp_path / "out" / "tune" / "run_info.json").read_text())["config"]
    assert info["two_stage"] is False and json.loads((tmp_path / "out" / "tune" / "summary.json").read_text())["steps"] == 2
