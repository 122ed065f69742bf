"""An exported model folder loads with plain ``transformers.AutoProcessor`` and
``AutoModelForImageTextToText``, in a fresh process without adamllm, with and without torchvision.

transformers 5.x cannot build a Qwen-VL processor without a video processor, and video
processors need torchvision; adamllm's environment has none (it would break transformers' image
processors with the CPU torch). An export names an image-only processor class instead
(``adamllm.backbones.processors.PORTABLE_PROCESSOR_CLASS``), which must give exactly the inputs
adamllm's own processor gives. Where torchvision is installed the folder still loads, with
``AutoProcessor`` and with the real Qwen processor class (video processor included): the slow
test runs the same probe with the Python that ``ADAMLLM_TORCHVISION_PYTHON`` names (for example a
venv with ``torch==2.14.1 torchvision==0.29.1 transformers==5.25.0``), and is skipped without it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adamllm.backbones.families import ADAPTERS
from adamllm.backbones.processors import PORTABLE_PROCESSOR_CLASS, load_processor
from adamllm.export import export_run
from adamllm.plugins.sft.config import SFTConfig
from adamllm.plugins.sft.data import load_records
from adamllm.plugins.sft.trainer import SFTTrainer
from adamllm.registry import get_plugin_manager
from adamllm.testing.data import write_mix

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_next", "mllama")
QWEN = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
PROBE = Path(__file__).with_name("export_probe.py")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
CONVERSATION = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is shown?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "A red tile."}]}]


@pytest.fixture(scope="module")
def exported(tiny_checkpoints, tmp_path_factory):
    """Each family: a one-step sft run, exported by ``adamllm export``'s code; and what adamllm's
    own processor and model give on one image and conversation (``expected.pt``, for the probe)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("export")
    records, image_root = load_records(write_mix(root / "data", n=2))
    pm = get_plugin_manager()
    expected = {}
    for family in FAMILIES:
        adapter = ADAPTERS[family].from_pretrained(tiny_checkpoints(family))
        SFTTrainer(SFTConfig(max_steps=1, batch_size=2, warmup_ratio=0.0)).train(
            adapter, records, root / family / "train", image_root=image_root, backbone=family)
        folder = export_run(root / family, root / f"{family}-export", pm)
        processor = load_processor(family, folder)
        text = processor.apply_chat_template(CONVERSATION, tokenize=False)
        image = Image.new("RGB", (60, 80), (200, 30, 30))
        inputs = dict(processor(images=[[image]] if family == "mllama" else [image], text=[text], return_tensors="pt"))
        model = ADAPTERS[family].from_pretrained(folder).model.eval()
        with torch.no_grad():
            logits = model(**inputs).logits
        expected[family] = {"folder": str(folder), "conversation": CONVERSATION, "text": text, "inputs": inputs,
                            "logits": logits, "nested": family == "mllama"}
    torch.save(expected, root / "expected.pt")
    return root / "expected.pt", expected


def probe(python: str, expected: Path, *options: str) -> list[dict]:
    result = subprocess.run([python, str(PROBE), str(expected), *options], capture_output=True, text=True,
                            timeout=600, env=ENV, cwd=expected.parent)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_the_saved_qwen_folder_names_the_portable_processor(exported):
    _, expected = exported
    for family in QWEN:
        folder = Path(expected[family]["folder"])
        config = json.loads((folder / "processor_config.json").read_text())
        assert config["processor_class"] == PORTABLE_PROCESSOR_CLASS
        assert config["video_processor"]["video_processor_type"].endswith("VideoProcessor")  # the real class's
        tokenizer = json.loads((folder / "tokenizer_config.json").read_text())
        assert tokenizer["image_token"] == "<|image_pad|>" and tokenizer["vision_start_token"] == "<|vision_start|>"
        assert not any("auto_map" in json.loads(f.read_text()) for f in folder.glob("*.json"))  # no remote code


def test_exports_load_with_autoprocessor_without_torchvision(exported):
    """This environment has no torchvision: AutoProcessor and AutoModelForImageTextToText load every
    family's export and give adamllm's exact inputs and logits."""
    path, _ = exported
    assert subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True).returncode != 0
    results = {r["family"]: r for r in probe(sys.executable, path)}
    assert sorted(results) == sorted(FAMILIES)
    for family in QWEN:
        assert results[family]["processor"] == PORTABLE_PROCESSOR_CLASS
    assert results["llava_next"]["processor"] == "LlavaNextProcessor"
    assert results["mllama"]["processor"] == "MllamaProcessor"


@pytest.mark.slow
def test_exports_load_where_torchvision_is_installed(exported):
    """With ``ADAMLLM_TORCHVISION_PYTHON`` naming a Python whose transformers has torchvision: the
    same probe (pixel values within the backends' rounding), and the Qwen folders also load with
    their real processor class and its video processor."""
    python = os.environ.get("ADAMLLM_TORCHVISION_PYTHON")
    if not python:
        pytest.skip("set ADAMLLM_TORCHVISION_PYTHON to a Python with transformers and torchvision")
    check = subprocess.run([python, "-c", "import torchvision, transformers; print(transformers.__version__)"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip(f"{python} has no working torchvision: {check.stderr.strip()[-300:]}")
    results = {r["family"]: r for r in probe(python, exported[0], "--pixel-atol", "0.02", "--real")}
    assert sorted(results) == sorted(FAMILIES)
    for family in QWEN:
        assert results[family]["processor"] == PORTABLE_PROCESSOR_CLASS
        assert results[family]["real"][1].endswith("VideoProcessor")
