"""Adapter behaviour beyond the contract: pixel budgets, config, plugin wiring, the tiny CLI."""
import subprocess
import sys

import pytest
from PIL import Image

from adamllm.backbones.families import Qwen2VLAdapter
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


def test_components_list_shows_backbones_with_providers():
    result = subprocess.run([sys.executable, "-m", "adamllm.cli", "components", "list", "--kind", "backbone", "--json"],
                            capture_output=True, text=True, timeout=60)
    import json

    rows = {r["name"]: r["provider"] for r in json.loads(result.stdout)}
    assert set(rows) == {"qwen2_vl", "llava_next", "mllama", "llava", "causal_lm"}
    assert rows["qwen2_vl"].startswith("adamllm ")
    assert rows["llava"] == "adamllm-example-backbone 0.1.0"  # the example plugin package
