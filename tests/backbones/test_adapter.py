"""Adapter behaviour beyond the contract: pixel budgets, evaluation settings, config, plugin
wiring, the tiny CLI."""
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from PIL import Image

from adamllm.backbones.families import ADAPTERS, Qwen2VLAdapter
from adamllm.backbones.tiny import build_tiny
from adamllm.backbone import SampleTooLong


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    return build_tiny("qwen2_vl", tmp_path_factory.mktemp("qwen"), size="small", seed=0)


def test_max_pixels_sets_the_number_of_image_tokens(qwen_dir):
    messages = [{"role": "user", "content": "<image>Describe."}, {"role": "assistant", "content": "Red."}]
    image = Image.new("RGB", (224, 224), "red")
    default = Qwen2VLAdapter.from_pretrained(qwen_dir).encode(messages, [image])["num_image_tokens"]
    small = Qwen2VLAdapter.from_pretrained(qwen_dir, max_pixels=56 * 56).encode(messages, [image])["num_image_tokens"]
    assert default == 36 and small == 4  # (224/28)^2 / 4 ... capped: 168²/28² = 36; 56²/28² = 4


def test_prompt_length_follows_the_pixel_budget(qwen_dir):
    # the engine's sort key counts image tokens as the budget in force makes them (36, 4, then 64)
    messages = [{"role": "user", "content": "<image>Describe."}]
    image = Image.new("RGB", (224, 224), "red")
    for adapter in (Qwen2VLAdapter.from_pretrained(qwen_dir), Qwen2VLAdapter.from_pretrained(qwen_dir, max_pixels=56 * 56)):
        encoded = adapter.encode(messages, [image], add_generation_prompt=True)
        assert adapter.prompt_length(messages, [image]) == encoded["input_ids"].shape[0]
    adapter.use_evaluation_settings()  # the 56 px budget set in the section stays
    assert adapter.prompt_length(messages, [image]) == encoded["input_ids"].shape[0]
    default = Qwen2VLAdapter.from_pretrained(qwen_dir)
    default.use_evaluation_settings()  # the reference budget: at least 224 x 224 pixels
    small = Image.new("RGB", (56, 56), "red")
    assert default.prompt_length(messages, [small]) == default.encode(messages, [small], add_generation_prompt=True)[
        "input_ids"].shape[0]


def test_max_length_refuses_whole_samples(qwen_dir):
    adapter = Qwen2VLAdapter.from_pretrained(qwen_dir, max_length=40)
    messages = [{"role": "user", "content": "<image>Describe."}, {"role": "assistant", "content": "Red " * 30}]
    with pytest.raises(SampleTooLong) as info:
        adapter.encode(messages, [Image.new("RGB", (64, 64))])
    assert info.value.length > 40 and info.value.max_length == 40


def test_wrong_family_checkpoint_is_a_clear_error(tmp_path):
    from adamllm.backbones.families import MllamaAdapter

    path = build_tiny("qwen2_vl", tmp_path / "q", seed=1)
    with pytest.raises(ValueError, match="is a 'qwen2_vl' checkpoint, not 'mllama'"):
        MllamaAdapter.from_pretrained(path).model


@pytest.mark.parametrize("checkpoint,backbone", [("qwen2_5_vl", "qwen2_vl"), ("qwen2_vl", "qwen2_5_vl"),
                                                 ("qwen2_5_vl", "qwen3_vl"), ("qwen3_vl", "qwen2_5_vl")])
def test_qwen_families_refuse_each_others_checkpoints(tiny_checkpoints, checkpoint, backbone):
    with pytest.raises(ValueError, match=f"is a '{checkpoint}' checkpoint, not '{backbone}'"):
        ADAPTERS[backbone].from_pretrained(tiny_checkpoints(checkpoint)).model


MESSAGES = [{"role": "user", "content": "<image>Describe."}]


@pytest.mark.parametrize("family,tokens", [("qwen2_vl", 64), ("qwen2_5_vl", 64), ("qwen3_vl", 49)])
def test_evaluation_uses_the_reference_image_budget_unless_the_config_sets_one(tiny_checkpoints, family, tokens):
    image = Image.new("RGB", (32, 32), "red")
    adapter = ADAPTERS[family].from_pretrained(tiny_checkpoints(family))
    assert adapter.encode(MESSAGES, [image])["num_image_tokens"] == 1  # the tiny checkpoint's own budget
    settings = adapter.use_evaluation_settings()
    assert settings == {"system_message": "You are a helpful assistant.", "min_pixels": 50176, "max_pixels": 1003520}
    # 32 px are scaled up to 224 px: (224/28)^2 = 64 tokens of 28 px (Qwen3-VL: (224/32)^2 = 49 of 32 px)
    assert adapter.encode(MESSAGES, [image])["num_image_tokens"] == tokens
    # a budget in the backbone section wins, also when the processor loads after the switch
    configured = ADAPTERS[family].from_pretrained(tiny_checkpoints(family), max_pixels=64 * 64)
    assert configured.use_evaluation_settings() == {"system_message": "You are a helpful assistant.",
                                                    "min_pixels": None, "max_pixels": 4096}
    assert configured.encode(MESSAGES, [image])["num_image_tokens"] == 1


def test_other_families_add_no_system_message_and_take_no_pixel_budget(tiny_checkpoints):
    for family in ("llava_next", "mllama"):
        assert ADAPTERS[family].from_pretrained(tiny_checkpoints(family)).use_evaluation_settings() == {
            "system_message": None}
    adapter = ADAPTERS["llava_next"].from_pretrained(tiny_checkpoints("llava_next"), min_pixels=1024)
    with pytest.raises(ValueError, match=r"apply to the Qwen-VL families \(qwen2_vl, qwen2_5_vl, qwen3_vl\) only"):
        adapter.processor


def test_tiny_cli_writes_a_checkpoint_plain_transformers_loads(tmp_path):
    out = tmp_path / "tiny"
    result = subprocess.run([sys.executable, "-m", "adamllm.cli", "tiny", "qwen2_vl", str(out), "--seed", "3"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    probe = ("import sys; from transformers import AutoModelForImageTextToText as A; "
             f"m = A.from_pretrained({str(out)!r}); assert 'adamllm' not in sys.modules; "
             "print(type(m).__name__, sum(p.numel() for p in m.parameters()))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    name, params = loaded.stdout.split()
    assert name == "Qwen2VLForConditionalGeneration" and 100_000 < int(params) < 600_000


@pytest.mark.parametrize("family,model_class", [("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration"),
                                                ("qwen3_vl", "Qwen3VLForConditionalGeneration")])
def test_tiny_command_builds_the_new_qwen_families(tmp_path, family, model_class):
    """``adamllm tiny FAMILY DIR`` in-process (the subprocess path is checked once above; that plain
    transformers loads and runs every family's build is checked in test_tiny.py)."""
    from transformers import AutoModelForImageTextToText

    from adamllm.cli import cli

    result = CliRunner().invoke(cli, ["tiny", family, str(tmp_path / family), "--seed", "2"])
    assert result.exit_code == 0, result.output
    marker = json.loads((tmp_path / family / "adamllm_tiny.json").read_text())
    assert (marker["family"], marker["model_type"], marker["architecture"], marker["seed"]) == (
        family, family, model_class, 2)
    assert type(AutoModelForImageTextToText.from_pretrained(tmp_path / family)).__name__ == model_class


def test_components_list_shows_backbones_with_providers():
    result = subprocess.run([sys.executable, "-m", "adamllm.cli", "components", "list", "--kind", "backbone", "--json"],
                            capture_output=True, text=True, timeout=60)
    rows = {r["name"]: r["provider"] for r in json.loads(result.stdout)}
    assert set(rows) == {"qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_next", "mllama", "llava", "causal_lm"}
    assert rows["qwen2_vl"].startswith("adamllm ")
    assert rows["llava"] == "adamllm-example-backbone 0.1.0"  # the example plugin package
