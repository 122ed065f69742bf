"""Issue 21, cases 16 and 19: a checkpoint is checked before anything loads from it.

16: ``llava_next`` / ``mllama`` given a Qwen2-VL checkpoint say so in one line (the checkpoint's
``model_type`` against the backbone chosen), before the processor fails on it. 19: a checkpoint
whose weights are a pickle (``pytorch_model.bin``) is refused unless ``allow_pickle_weights`` is
set; allowed, it loads the same weights, and a pickle that would run code is refused in one line
(the code never runs). Through ``adamllm eval`` as a user runs it, and through the adapters.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adamllm.backbone import BackboneConfig
from adamllm.backbones.causal_lm import CausalLMAdapter, build_tiny_causal_lm
from adamllm.backbones.checkpoints import CheckpointError
from adamllm.backbones.families import LlavaNextAdapter, MllamaAdapter, Qwen2VLAdapter


def adamllm(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAMLLM_")}
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def error_line(result) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    return errors[0]


def as_pickle(source: Path, target: Path, payload=None) -> Path:
    """A copy of a checkpoint folder whose weights are ``pytorch_model.bin`` (``torch.save``) instead of safetensors."""
    shutil.copytree(source, target)
    weights = target / "model.safetensors"
    torch.save(payload if payload is not None else load_file(weights), target / "pytorch_model.bin")
    weights.unlink()
    return target


class RunsCode:
    """Unpickling this runs ``touch MARKER``: what a malicious ``pytorch_model.bin`` does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# -- 16: another family's checkpoint -----------------------------------------------------------
@pytest.mark.parametrize("adapter", [LlavaNextAdapter, MllamaAdapter])
def test_wrong_family_is_named_before_the_processor_loads(tiny_checkpoints, adapter):
    qwen = tiny_checkpoints("qwen2_vl")
    messages = [{"role": "user", "content": "Describe."}]
    with pytest.raises(CheckpointError, match=f"is a 'qwen2_vl' checkpoint, not '{adapter.family}': select the "
                                              f"matching backbone type"):
        adapter.from_pretrained(qwen).encode(messages, add_generation_prompt=True)  # the processor comes first
    with pytest.raises(CheckpointError, match=f"is a 'qwen2_vl' checkpoint, not '{adapter.family}'"):
        adapter.from_pretrained(qwen).model


@pytest.mark.parametrize("backbone", ["llava_next", "mllama"])
def test_eval_names_the_mismatch_in_one_line(tiny_checkpoints, tmp_path, backbone):
    shutil.copytree(tiny_checkpoints("qwen2_vl"), tmp_path / "qwen")
    result = adamllm("eval", "--backbone", backbone, "--model", "qwen", "--benchmarks", "shapes_vqa", "--limit", "1",
                     "--out", "out", "--quiet", cwd=tmp_path)
    assert error_line(result) == (f"Error: cannot load model 'qwen' with backbone {backbone!r}: qwen is a 'qwen2_vl' "
                                  f"checkpoint, not {backbone!r}: select the matching backbone type")


def test_matching_family_still_loads(tiny_checkpoints):
    adapter = Qwen2VLAdapter.from_pretrained(tiny_checkpoints("qwen2_vl"))
    assert adapter.processor is not None and adapter.model.config.model_type == "qwen2_vl"


# -- 19: pickle weights -------------------------------------------------------------------------
def test_pickle_weights_refused_unless_allowed(tiny_checkpoints, tmp_path):
    source = tiny_checkpoints("qwen2_vl")
    folder = as_pickle(source, tmp_path / "pickled")
    with pytest.raises(CheckpointError, match=r"holds pickle weights \(pytorch_model.bin\), not safetensors: .*"
                                              r"allow_pickle_weights: true"):
        Qwen2VLAdapter.from_pretrained(folder).processor
    with pytest.raises(CheckpointError, match="holds pickle weights"):
        Qwen2VLAdapter.from_pretrained(folder).model
    allowed = Qwen2VLAdapter(BackboneConfig(model=str(folder), allow_pickle_weights=True)).model
    reference = load_file(source / "model.safetensors")
    state = allowed.state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in reference.items() if name in state)
    assert Qwen2VLAdapter.from_pretrained(source).model is not None  # safetensors: no option needed


def test_causal_lm_refuses_pickle_weights(tmp_path):
    folder = as_pickle(build_tiny_causal_lm(tmp_path / "lm"), tmp_path / "lm_pickled")
    with pytest.raises(CheckpointError, match="holds pickle weights"):
        CausalLMAdapter.from_pretrained(folder).model
    assert CausalLMAdapter(BackboneConfig(model=str(folder), allow_pickle_weights=True)).model is not None


def test_eval_refuses_pickle_then_a_pickle_that_runs_code(tiny_checkpoints, tmp_path):
    source = tiny_checkpoints("qwen2_vl")
    as_pickle(source, tmp_path / "pickled")
    refused = adamllm("eval", "--backbone", "qwen2_vl", "--model", "pickled", "--benchmarks", "shapes_vqa",
                      "--limit", "1", "--out", "out", "--quiet", cwd=tmp_path)
    assert error_line(refused) == (
        "Error: cannot load model 'pickled' with backbone 'qwen2_vl': pickled holds pickle weights "
        "(pytorch_model.bin), not safetensors: a pickle file can run code when loaded; convert it to safetensors, "
        "or set allow_pickle_weights: true in the backbone section (adamllm eval: --allow-pickle-weights) if you "
        "trust it")
    marker = tmp_path / "PWNED"
    as_pickle(source, tmp_path / "malicious", payload={"x": RunsCode(marker)})
    evil = adamllm("eval", "--backbone", "qwen2_vl", "--model", "malicious", "--benchmarks", "shapes_vqa",
                   "--limit", "1", "--out", "out2", "--quiet", "--allow-pickle-weights", cwd=tmp_path)
    assert error_line(evil).startswith("Error: cannot load model 'malicious' with backbone 'qwen2_vl': malicious: "
                                       "its pickle weights were refused")
    assert not marker.exists()


def test_run_config_takes_the_option(tmp_path):
    config = tmp_path / "run.yaml"
    (tmp_path / "model").mkdir()
    config.write_text("output_dir: out\nstages: [evaluate]\nbackbone: {type: qwen2_vl, model: model, "
                      "allow_pickle_weights: true}\nbenchmarks: [{type: shapes_vqa}]\n")
    result = adamllm("config", "validate", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
