"""The released synthesizer as shipped: a tiny stand-in whose chat_template.json, tokenizer and
processor config reproduce the released checkpoint's (``released_standin``), prompted with the
reference conversation string, on pairs in the released layout as shipped (a JSON array of bare
file names beside ``images/``); a prompt format that does not fit fails before the first batch."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import importlib.util

import pytest

from adamllm.backbone import BackboneConfig
from adamllm.backbones.families import LlavaNextAdapter
from adamllm.plugins.synthesis import prompt_format
from adamllm.plugins.synthesis.protocol import RELEASED
from adamllm.plugins.synthesis.synthesizer import open_user_turn_prompt

_spec = importlib.util.spec_from_file_location("released_standin", Path(__file__).with_name("released_standin.py"))
released_standin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(released_standin)
IMAGE_TOKEN, build_released_standin = released_standin.IMAGE_TOKEN, released_standin.build_released_standin
reference_prompt = released_standin.reference_prompt

CAPTIONS = ["Grilled salmon with lemon and dill on a white plate.",
            "A bowl of tomato soup, basil leaves floating on top.",
            "Chocolate cake sliced to show three layers of cream."]


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return build_released_standin(tmp_path_factory.mktemp("synthesizer") / "visual-synth")


def released_layout(folder: Path, captions=CAPTIONS) -> Path:
    """``image_caption_pairs.json`` (pretty-printed array, bare file names) beside ``images/``."""
    from PIL import Image

    (folder / "images").mkdir(parents=True)
    records = []
    for i, caption in enumerate(captions):
        name = f"{i:05d}.png"
        Image.new("RGB", (40 + 8 * i, 36), (30 * i, 120, 200)).save(folder / "images" / name)
        records.append({"images": [name], "messages": [
            {"role": "user", "content": "<image>Describe the dish in the image."},
            {"role": "assistant", "content": caption}]})
    path = folder / "image_caption_pairs.json"
    path.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    return path


def run_cli(*args, cwd: Path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


def write_config(folder: Path, standin: Path, pairs: Path, **synthesizer) -> Path:
    options = {"max_new_tokens": 12, "batch_size": 2, **synthesizer}
    config = folder / "run.yaml"
    config.write_text(textwrap.dedent(f"""\
        output_dir: out
        stages: [synthesize]
        data: {{synthesize: {pairs}}}
        synthesizer:
          type: adamllm
          model: {{type: llava_next, model: {standin}}}
        """) + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in options.items()), encoding="utf-8")
    return config


def test_the_standin_ships_the_released_defects(standin):
    """What made the released checkpoint produce nothing: its own template cannot encode a prompt."""
    assert not (standin / "chat_template.jinja").exists() and (standin / "chat_template.json").is_file()
    adapter = LlavaNextAdapter(BackboneConfig(model=str(standin)))
    assert adapter.image_token == IMAGE_TOKEN
    shipped = open_user_turn_prompt(adapter, CAPTIONS[0], RELEASED)
    assert IMAGE_TOKEN not in shipped and "<image>" in shipped and "<|end_header_id|>\n\n\n" in shipped
    assert adapter.tokenizer("x")["input_ids"][0] == adapter.tokenizer.bos_token_id  # the tokenizer adds BOS


def test_auto_chooses_the_reference_string_for_the_released_checkpoint(standin, tmp_path):
    adapter = LlavaNextAdapter(BackboneConfig(model=str(standin)))
    fmt, why = prompt_format.choose("auto", adapter)
    assert fmt is prompt_format.LLAVA_LLAMA_3 and "signature" in why
    prompt_format.apply(fmt, adapter)
    prompt = open_user_turn_prompt(adapter, CAPTIONS[0], RELEASED)
    assert prompt == reference_prompt(CAPTIONS[0])
    sample = adapter.encode_prompt(prompt, [str(released_layout(tmp_path).parent / "images" / "00000.png")],
                                   add_bos=True)
    bos = adapter.tokenizer.bos_token_id
    assert sample["input_ids"][:3].tolist()[:2] == [bos, bos] and sample["input_ids"][2] != bos  # two BOS
    assert sample["num_image_tokens"] > 1


def test_the_released_name_alone_chooses_the_reference_string(tmp_path):
    assert prompt_format.names_released("AdaptLLM/visual-instruction-synthesizer")
    assert prompt_format.names_released("/cache/models--AdaptLLM--visual-instruction-synthesizer/snapshots/abc")
    assert not prompt_format.names_released("/runs/demo/tune/model")
    from adamllm.backbones.tiny import build_tiny

    ours = build_tiny("llava_next", tmp_path / "ours")  # a template that writes its image token
    fmt, _ = prompt_format.choose("auto", LlavaNextAdapter(BackboneConfig(model=str(ours))))
    assert fmt is prompt_format.CHAT_TEMPLATE
    named = build_tiny("llava_next", tmp_path / "visual-instruction-synthesizer")  # template fixed, name kept
    fmt, why = prompt_format.choose("auto", LlavaNextAdapter(BackboneConfig(model=str(named))))
    assert fmt is prompt_format.LLAVA_LLAMA_3 and "released" in why


def test_preview_on_the_released_layout_sends_the_reference_string(standin, tmp_path):
    pairs = released_layout(tmp_path / "food")
    config = write_config(tmp_path, standin, pairs)
    result = run_cli("run", str(config), "--preview", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "out-preview" / "synthesize"
    sent = [json.loads(line) for line in (out / "prompts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [p["prompt"] for p in sent] == [reference_prompt(c) for c in CAPTIONS]  # byte for byte
    assert all(p["add_bos"] and p["prompt_format"] == "llava_llama_3" for p in sent)
    assert reference_prompt(CAPTIONS[0]) in result.stdout  # the first prompt is printed
    stats = json.loads((out / "stats.json").read_text())
    assert stats["pairs"] == 3 and stats["bad_sample"] == 0 and stats["failed"] == {}  # every pair encodes
    assert stats["generated_tokens"] > 0
    assert stats["prompt_format"] == "llava_llama_3" and stats["rejected"] == 0
    progress = (out / "_progress.jsonl").read_text().splitlines()
    assert len(progress) == 3  # every pair generated (random weights: triplets or not)


def test_a_format_that_cannot_encode_fails_before_the_first_batch(standin, tmp_path):
    pairs = released_layout(tmp_path / "food")
    config = write_config(tmp_path, standin, pairs, prompt_format="chat_template")
    result = run_cli("run", str(config), cwd=tmp_path)
    assert result.returncode != 0
    message = [line for line in result.stderr.splitlines() if line.startswith("Error")]  # (the rest: a bar)
    assert len(message) == 1 and "prompt does not encode: 0 image tokens for 1 image" in message[0]
    assert "llava_llama_3" in message[0] and "Traceback" not in result.stderr
    out = tmp_path / "out" / "synthesize"
    assert not (out / "_progress.jsonl").exists() or not (out / "_progress.jsonl").read_text()  # nothing generated


def test_a_stage_whose_every_pair_failed_exits_non_zero(standin, tmp_path):
    long = " ".join(["Slow-roasted tomatoes with garlic, thyme and olive oil."] * 40)
    pairs = released_layout(tmp_path / "food", captions=[long + f" ({i})" for i in range(3)])
    config = write_config(tmp_path, standin, pairs)
    config.write_text(config.read_text().replace("model: {type: llava_next, model: ",
                                                 "model: {type: llava_next, max_length: 400, model: "))
    result = run_cli("run", str(config), cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert "3 of 3 pairs failed (bad_sample: 3)" in line and "more than max_length=400" in line
    assert "rejected.jsonl" in line
    out = tmp_path / "out" / "synthesize"
    rejected = [json.loads(r) for r in (out / "rejected.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in rejected] == ["bad_sample"] * 3 and all(r["id"] for r in rejected)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["failed"] == {"bad_sample": 3} and stats["triplets"] == 0 and "3 of 3" in stats["error"]


def test_tuning_the_released_checkpoint_keeps_its_conversation_format(standin, tmp_path):
    """tune from the released checkpoint renders the seed conversations in the reference string and
    saves the tuned model with that template, so synthesis with it sends the same string (one BOS:
    the trainer encodes the rendered text, the tokenizer adds none)."""
    import shutil

    from adamllm.testing.data import write_seed_folder

    write_seed_folder(tmp_path / "seed")
    shutil.copytree(standin, tmp_path / "base")
    pairs = released_layout(tmp_path / "food")
    config = tmp_path / "run.yaml"
    config.write_text(textwrap.dedent(f"""\
        output_dir: out
        stages: [tune, synthesize]
        data: {{tune: seed, synthesize: {pairs}}}
        synthesizer: {{type: adamllm, max_new_tokens: 8, batch_size: 2, model: {{type: llava_next, model: base}}}}
        trainer: {{type: sft, max_steps: 2, batch_size: 2, learning_rate: 0.001}}
        """))
    result = run_cli("run", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "[tune] conversations in prompt format llava_llama_3" in result.stdout
    assert "[synthesize] prompt format chat_template" in result.stdout  # the tuned model's own template...
    tuned = LlavaNextAdapter(BackboneConfig(model=str(tmp_path / "out" / "tune" / "model")))
    assert open_user_turn_prompt(tuned, CAPTIONS[1], RELEASED) == reference_prompt(CAPTIONS[1])  # ...is the string
    conversation = json.loads((tmp_path / "out" / "tune" / "seed_conversations.jsonl").read_text().splitlines()[0])
    rendered = tuned.render(conversation["messages"])
    assert rendered.startswith(reference_prompt(conversation["messages"][1]["content"]))
    stats = json.loads((tmp_path / "out" / "synthesize" / "stats.json").read_text())
    assert stats["bad_sample"] == 0 and stats["pairs"] == 3
