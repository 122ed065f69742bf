"""The compose stage writes the mix per trainer, with its images in ``OUT/compose/images/`` named
relative to the mix's folder, so that a copied run folder keeps working.

- ``mix.jsonl`` (ShareGPT, ``<image>`` placeholder): the sft trainer and LLaMA-Factory read it;
  ``dataset_info.json`` declares it to LLaMA-Factory (its ``media_dir`` defaults to the
  ``dataset_dir`` the paths are relative to);
- ``mix_trl.jsonl``: TRL's documented vision conversational form, with no ``<image>`` anywhere;
- ``dataset/``: ``load_from_disk``.

Runs use the built-in ``rules`` synthesizer and ``none`` filter (no model) and a config whose
paths are relative to it, as a portable run folder has. The last two tests (slow) train with TRL
and LLaMA-Factory themselves, from environments named by ``ADAMLLM_TRL_PYTHON`` and
``ADAMLLM_LLAMAFACTORY_CLI`` (skipped without them; see the comment above them).
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from adamllm.config import apply_overrides, load_yaml, validate_config
from adamllm.mix_writers import content_blocks, llamafactory_info, place, to_trl
from adamllm.registry import get_plugin_manager
from adamllm.runner import run_pipeline
from adamllm.testing.data import write_pairs

CONFIG = """\
output_dir: out
seed: 0
stages: [synthesize, filter, compose]
data: {synthesize: pairs/image_caption_pairs.jsonl}
synthesizer: {type: rules, seed: 0}
filter: {type: none}
composer: {type: adamllm, formats: [llamafactory, trl, datasets]}
backbone: {type: qwen2_vl, model: tiny-qwen2_vl, tiny: tiny}
trainer: {type: sft, max_steps: 2, batch_size: 2, warmup_ratio: 0.0}
"""


def make_run_folder(root: Path, n: int = 6) -> Path:
    write_pairs(root / "pairs", n=n, as_json_array=False)
    (root / "run.yaml").write_text(CONFIG)
    return root / "run.yaml"


def run(config: Path, *overrides: str, messages: list | None = None) -> dict:
    pm = get_plugin_manager()
    data = apply_overrides(load_yaml(config), list(overrides))
    validated = validate_config(data, pm, source=config, base_dir=config.parent)
    return run_pipeline(validated, pm, echo=(messages.append if messages is not None else lambda _: None))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def composed(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    run(make_run_folder(root))
    return root


def test_the_mix_names_its_own_images_relative_to_its_folder(composed):
    compose = composed / "out" / "compose"
    mix = lines(compose / "mix.jsonl")
    assert mix and {p.name for p in compose.iterdir()} >= {"mix.jsonl", "mix_trl.jsonl", "dataset_info.json",
                                                          "dataset", "images", "stats.json"}
    for record in mix:
        (image,) = record["images"]
        assert image.startswith("images/images/pair") and not os.path.isabs(image)  # pairs/images/pairN.png
        copy, source = compose / image, composed / "pairs" / image.removeprefix("images/")
        assert copy.read_bytes() == source.read_bytes()
        assert copy.stat().st_ino == source.stat().st_ino  # a hard link (one file system here): no data copied
    stats = json.loads((compose / "stats.json").read_text())
    assert stats["image_folder"] == {"folder": "images", "files": len(mix), "linked": len(mix), "copied": 0,
                                     "kept": 0, "removed": 0}
    assert stats["formats"] == {"llamafactory": "dataset_info.json", "trl": "mix_trl.jsonl", "datasets": "dataset"}


def test_the_trl_form_is_trls_vision_conversational_format(composed):
    """TRL's dataset formats guide, "Vision datasets": an ``images`` column, and each message's
    ``content`` a list of ``{"type": "image"}`` / ``{"type": "text", "text": ...}`` blocks. The
    placeholder becomes the image block, so no literal ``<image>`` is left for TRL to train on."""
    from datasets import load_dataset

    compose = composed / "out" / "compose"
    assert "<image>" not in (compose / "mix_trl.jsonl").read_text()
    sharegpt, trl = lines(compose / "mix.jsonl"), lines(compose / "mix_trl.jsonl")
    assert [r["id"] for r in trl] == [r["id"] for r in sharegpt]
    for plain, record in zip(sharegpt, trl):
        assert set(record) == {"images", "messages", "id"} and record["images"] == plain["images"]
        assert [m["role"] for m in record["messages"]] == [m["role"] for m in plain["messages"]]
        first = record["messages"][0]["content"]
        assert first[0] == {"type": "image"} and first[1]["type"] == "text" and len(first) == 2
        for message, original in zip(record["messages"], plain["messages"]):
            assert all(block["type"] in ("image", "text") for block in message["content"])
            assert all(set(block) == ({"type"} if block["type"] == "image" else {"type", "text"})
                       for block in message["content"])
            text = " ".join(b["text"] for b in message["content"] if b["type"] == "text")
            assert text == original["content"].replace("<image>", "").strip()
        blocks = sum(b["type"] == "image" for m in record["messages"] for b in m["content"])
        assert blocks == len(record["images"]) == 1
        assert all((compose / image).is_file() for image in record["images"])
    # how a TRL user loads it (a JSON Lines file through datasets)
    rows = load_dataset("json", data_files=str(compose / "mix_trl.jsonl"), split="train")
    assert rows[0]["images"] == trl[0]["images"] and rows[0]["messages"][0]["content"][0]["type"] == "image"


def test_the_llamafactory_and_datasets_forms(composed):
    from datasets import load_from_disk

    compose = composed / "out" / "compose"
    info = json.loads((compose / "dataset_info.json").read_text())
    assert info == llamafactory_info("mix.jsonl")
    entry = info["adamllm_mix"]
    assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "messages", "images": "images"}
    mix = lines(compose / entry["file_name"])
    for record in mix:
        assert record["messages"][0]["content"].startswith("<image>")  # LLaMA-Factory's placeholder, kept
        # LLaMA-Factory: media_dir defaults to dataset_dir, and it opens os.path.join(media_dir, image)
        assert all(os.path.isfile(os.path.join(compose, image)) for image in record["images"])
    saved = load_from_disk(str(compose / "dataset"))
    assert [dict(row) for row in saved] == [{**r, **{k: None for k in saved.column_names if k not in r}} for r in mix]


def test_a_copied_run_folder_trains_from_its_own_copy_of_the_images(tmp_path):
    """Compose in one folder, copy the folder elsewhere, delete the original: the copy's mix, in
    every form, names only files inside the copy, and ``train`` runs from the copied config."""
    original = tmp_path / "original"
    run(make_run_folder(original))
    copy = tmp_path / "elsewhere" / "copied"
    shutil.copytree(original, copy)
    shutil.rmtree(original)
    compose = copy / "out" / "compose"
    for name in ("mix.jsonl", "mix_trl.jsonl"):
        for record in lines(compose / name):
            assert all((compose / image).resolve().is_relative_to(copy) and (compose / image).is_file()
                       for image in record["images"])
    summary = run(copy / "run.yaml", "stages=[train]")
    assert summary["train"]["steps"] == 2 and (copy / "out" / "train" / "model" / "model.safetensors").is_file()
    assert not (copy / "out" / "train" / "rejected.jsonl").exists() or \
        not (copy / "out" / "train" / "rejected.jsonl").read_text().strip()


def test_formats_are_part_of_the_fingerprint_and_dropped_forms_are_removed(tmp_path):
    config = make_run_folder(tmp_path)
    run(config)
    compose = tmp_path / "out" / "compose"
    messages: list[str] = []
    run(config, "composer.formats=[llamafactory]", messages=messages)
    assert any(m.startswith("[compose] rerunning from scratch") and "composer.formats" in m for m in messages)
    assert (compose / "dataset_info.json").is_file()
    assert not (compose / "mix_trl.jsonl").exists() and not (compose / "dataset").exists()
    stats = json.loads((compose / "stats.json").read_text())
    files = stats["image_folder"]["files"]
    assert stats["formats"] == {"llamafactory": "dataset_info.json"}
    assert stats["image_folder"]["kept"] == files and stats["image_folder"]["linked"] == 0  # nothing placed twice
    messages.clear()
    run(config, "composer.formats=[llamafactory]", messages=messages)
    assert any(m.startswith("[compose] already done") for m in messages)


def test_an_image_the_mix_no_longer_names_is_removed(tmp_path):
    config = make_run_folder(tmp_path, n=6)
    run(config)
    images = tmp_path / "out" / "compose" / "images"
    assert len(list(images.rglob("*.png"))) == 6
    records = (tmp_path / "pairs" / "image_caption_pairs.jsonl").read_text().splitlines()
    (tmp_path / "pairs" / "image_caption_pairs.jsonl").write_text("\n".join(records[:4]) + "\n")
    run(config)
    stats = json.loads((tmp_path / "out" / "compose" / "stats.json").read_text())
    assert len(list(images.rglob("*.png"))) == 4 == stats["image_folder"]["files"]
    assert stats["image_folder"]["removed"] == 2


def test_another_file_system_gets_copies(tmp_path):
    """A hard link cannot cross file systems: the image is copied, keeping its time, and a rerun
    keeps the copy."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second writable file system (/dev/shm) here")
    source_dir = Path(__import__("tempfile").mkdtemp(dir=shm))
    try:
        source = source_dir / "a.png"
        source.write_bytes(b"\x89PNG not really")
        target = tmp_path / "images" / "a.png"
        assert place(source, target) == "copied"
        assert target.read_bytes() == source.read_bytes() and target.stat().st_ino != source.stat().st_ino
        assert place(source, target) == "kept"
        source.write_bytes(b"\x89PNG changed, longer")
        assert place(source, target) == "copied" and target.read_bytes() == source.read_bytes()
    finally:
        shutil.rmtree(source_dir)


@pytest.mark.parametrize("text, blocks", [
    ("<image>Describe it.", [{"type": "image"}, {"type": "text", "text": "Describe it."}]),
    ("<image>\nDescribe it.", [{"type": "image"}, {"type": "text", "text": "Describe it."}]),
    ("Compare <image> with <image>.", [{"type": "text", "text": "Compare"}, {"type": "image"},
                                       {"type": "text", "text": "with"}, {"type": "image"},
                                       {"type": "text", "text": "."}]),
    ("No image here. ", [{"type": "text", "text": "No image here. "}]),
])
def test_content_blocks(text, blocks):
    assert content_blocks(text) == blocks


def test_to_trl_keeps_the_stage_and_refuses_a_count_mismatch():
    record = {"id": "q0/task", "stage": 2, "images": ["images/a.png"],
              "messages": [{"role": "system", "content": "Be brief."},
                           {"role": "user", "content": "<image>What colour?"},
                           {"role": "assistant", "content": "Red."}]}
    assert to_trl(record) == {"images": ["images/a.png"], "id": "q0/task", "stage": 2, "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Red."}]}]}
    from adamllm.stages import StageError

    with pytest.raises(StageError, match="1 <image> placeholders but 2 images"):
        to_trl({**record, "images": ["images/a.png", "images/b.png"]})


def test_an_unknown_format_is_a_config_error(tmp_path):
    from adamllm.config import ConfigError

    config = make_run_folder(tmp_path)
    with pytest.raises(ConfigError, match="composer.formats"):
        run(config, "composer.formats=[llamafactory, axolotl]")
    with pytest.raises(ConfigError, match="twice"):
        run(config, "composer.formats=[trl, trl]")


# -- the tools themselves, from other environments ------------------------------------------------
# Neither TRL nor LLaMA-Factory can live in adamllm's environment (both need torchvision, which
# breaks transformers' image processors with the CPU torch; LLaMA-Factory also pins older
# transformers and datasets). These tests run them from other environments, named by environment
# variables, and are skipped without them:
#
# - ADAMLLM_TRL_PYTHON: a Python with TRL, e.g. `python3 -m venv /tmp/venv-trl && /tmp/venv-trl/bin/pip
#   install torch==2.14.1 torchvision==0.29.1 transformers==5.25.0 trl==1.16.0`;
# - ADAMLLM_LLAMAFACTORY_CLI: LLaMA-Factory's `llamafactory-cli`, e.g. from `pip install llamafactory==0.9.5
#   torch==2.14.1 torchvision==0.29.1` in its own venv.
#
# The model is a tiny Qwen2-VL checkpoint saved by adamllm (it loads with AutoProcessor anywhere).
TOOL_ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DISABLE_VERSION_CHECK": "1"}


def tool(variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        pytest.skip(f"set {variable} to run this test (see the comment above these tests in test_mix_formats.py)")
    return value


@pytest.fixture
def trl_python() -> str:
    return tool("ADAMLLM_TRL_PYTHON")  # asked first: a skipped test builds nothing


@pytest.fixture
def llamafactory_cli() -> str:
    return tool("ADAMLLM_LLAMAFACTORY_CLI")


@pytest.fixture(scope="module")
def copied_for_tools(tmp_path_factory):
    """A composed run folder (every form), copied elsewhere, the original deleted; and a tiny
    Qwen2-VL checkpoint."""
    from adamllm.backbones.tiny import build_tiny

    root = tmp_path_factory.mktemp("tools")
    run(make_run_folder(root / "original", n=8))
    shutil.copytree(root / "original", root / "copy")
    shutil.rmtree(root / "original")
    return root / "copy" / "out" / "compose", build_tiny("qwen2_vl", root / "model", size="tiny")


@pytest.mark.slow
def test_trl_trains_on_the_trl_form_with_no_literal_image(trl_python, copied_for_tools, tmp_path):
    python = trl_python
    compose, model = copied_for_tools
    result = subprocess.run([python, str(Path(__file__).with_name("trl_probe.py")), str(model), str(compose),
                             str(tmp_path / "trl")], capture_output=True, text=True, timeout=900, env=TOOL_ENV)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "<|image_pad|>" in report["trl_text"] and "<image>" not in report["trl_text"]
    assert "<image>" in report["sharegpt_text"]  # why the TRL form exists: TRL keeps the placeholder as text
    assert report["steps"] == 2 and len(report["losses"]) == 2


@pytest.mark.slow
def test_llamafactory_trains_on_the_mix_through_dataset_info(llamafactory_cli, copied_for_tools, tmp_path):
    cli = llamafactory_cli
    compose, model = copied_for_tools
    import yaml

    config = tmp_path / "train.yaml"  # (LLaMA-Factory 0.9.5 fails to read a .json config)
    config.write_text(yaml.safe_dump({
        "model_name_or_path": str(model), "stage": "sft", "do_train": True, "finetuning_type": "full",
        "dataset_dir": str(compose), "dataset": "adamllm_mix", "template": "qwen2_vl", "cutoff_len": 1024,
        "overwrite_cache": True, "preprocessing_num_workers": 1, "output_dir": str(tmp_path / "out"),
        "logging_steps": 1, "max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 1.0e-4,
        "report_to": "none", "use_cpu": True, "save_strategy": "no"}))
    result = subprocess.run([cli, "train", str(config)], capture_output=True, text=True, timeout=900, env=TOOL_ENV,
                            cwd=tmp_path)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "does not exist in `media_dir`" not in log  # every image found under dataset_dir
    assert "<|vision_start|><|image_pad|>" in log and "train_loss" in log
