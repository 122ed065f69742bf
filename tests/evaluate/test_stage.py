"""The ``evaluate`` stage of ``adamllm run``: config benchmarks, domain defaults, which model it evaluates."""
import json
import shutil
from pathlib import Path

import yaml
from click.testing import CliRunner

import adamllm.backbones.plugin
import adamllm.domains.biomed.plugin
from adamllm import hookimpl
from adamllm.cli import cli
from adamllm.config import validate_config
from adamllm.runner import run_pipeline
from adamllm.specs import DomainSpec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def test_adamllm_run_evaluates_the_config_benchmarks(tiny_model, tmp_path):
    shutil.copytree(FIXTURES / "slake", tmp_path / "data" / "slake")
    config = {
        "output_dir": "out", "stages": ["evaluate"],
        "backbone": {"type": "qwen2_vl", "model": tiny_model},
        "benchmarks": [{"type": "slake", "source": "data/slake", "limit": 3, "max_new_tokens": 3, "scorer": "strict"},
                       {"type": "shapes_vqa", "limit": 2, "max_new_tokens": 3}],
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(cli, ["run", str(path)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "evaluate"
    report = json.loads((out / "report.json").read_text())
    slake = report["benchmarks"]["slake"]
    assert (slake["n_samples"], slake["scorer_version"]) == (3, "strict-1")
    assert slake["data"]["source"] == str(tmp_path / "data" / "slake")  # relative to the config file
    assert report["benchmarks"]["shapes_vqa"]["scorer"] == "exact"
    assert report["model"] == tiny_model and (out / "report.md").exists() and (out / "report.png").exists()
    done = json.loads((out / "_done.json").read_text())
    assert done["report"] == str(out / "report.json") and set(done["scores"]) == {"slake", "shapes_vqa"}
    again = CliRunner().invoke(cli, ["run", str(path)])
    assert "already done" in again.output
    first = (out / "slake" / "predictions.jsonl").stat().st_mtime_ns
    forced = CliRunner().invoke(cli, ["run", str(path), "--force"])
    assert forced.exit_code == 0 and "[evaluate] running" in forced.output
    assert (out / "slake" / "predictions.jsonl").stat().st_mtime_ns != first  # generated again


class ToyDomain:
    @hookimpl
    def adamllm_domains(self):
        return [DomainSpec(name="toy", benchmarks=("slake",), defaults={"benchmarks": [
            {"type": "slake", "source": str(FIXTURES / "slake"), "limit": 2, "max_new_tokens": 2}]})]


def test_domain_defaults_and_the_trained_model(tiny_model, tmp_path, plugin_manager, register_plugin):
    register_plugin(adamllm.backbones.plugin, "adamllm.backbones")
    register_plugin(adamllm.domains.biomed.plugin, "adamllm.biomed")
    register_plugin(ToyDomain(), "toy")
    # the trainer's output, OUT/train/model, is evaluated rather than the backbone section's model
    shutil.copytree(tiny_model, tmp_path / "train" / "model")
    cfg = validate_config({"output_dir": str(tmp_path), "stages": ["evaluate"], "domain": {"type": "toy"},
                           "backbone": {"type": "qwen2_vl", "model": "not/downloaded"}}, plugin_manager)
    summaries = run_pipeline(cfg, plugin_manager, echo=lambda _: None)
    assert summaries["evaluate"]["model"] == str(tmp_path / "train" / "model")
    report = json.loads((tmp_path / "evaluate" / "report.json").read_text())
    assert list(report["benchmarks"]) == ["slake"] and report["benchmarks"]["slake"]["n_samples"] == 2
    assert report["benchmarks"]["slake"]["generation"]["max_new_tokens"] == 2


def test_data_evaluate_names_the_model(tiny_model, tmp_path, plugin_manager, register_plugin):
    register_plugin(adamllm.backbones.plugin, "adamllm.backbones")
    register_plugin(adamllm.domains.biomed.plugin, "adamllm.biomed")
    shutil.copytree(tiny_model, tmp_path / "mine")
    cfg = validate_config({"output_dir": "out", "stages": ["evaluate"], "data": {"evaluate": "mine"},
                           "backbone": {"type": "qwen2_vl", "model": "not/downloaded"},
                           "benchmarks": [{"type": "vqa_rad", "source": str(FIXTURES / "vqa_rad"), "limit": 1,
                                           "max_new_tokens": 2}]},
                          plugin_manager, source=tmp_path / "c.yaml", base_dir=tmp_path)
    summaries = run_pipeline(cfg, plugin_manager, echo=lambda _: None)
    assert summaries["evaluate"]["model"] == str(tmp_path / "mine")
