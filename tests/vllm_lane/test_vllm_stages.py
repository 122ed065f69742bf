"""The synthesize and filter stages with ``engine: vllm`` in their model slots, against the
transformers engine, through ``adamllm run``.

Runs only in the vLLM lane (``make test-vllm``). One run tunes the demo's synthesizer (the toy
world's general model, tuned on the general seed folder with the demo's settings),
synthesizes a task for each of 48 domain pairs and judges them with a tiny text-only judge, all
with the transformers engine; a
second run synthesizes and judges the same pairs from the same tuned synthesizer and judge with
``engine: vllm`` in both model sections. The files each stage writes must agree (at least 95% of
records; the divergences are printed).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

vllm = pytest.importorskip("vllm")

pytestmark = pytest.mark.vllm
PAIRS = 48


def adamllm_run(config_path, timeout=1200):
    result = subprocess.run([sys.executable, "-m", "adamllm.cli", "run", str(config_path)], capture_output=True,
                            text=True, timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    return result


def rows(path, key):
    return {row["id"]: tuple(row[k] for k in key) for row in map(json.loads, path.read_text().splitlines())}


def agreement(a, b, what):
    assert set(a) == set(b), f"{what}: different ids"
    diverged = [(i, a[i], b[i]) for i in sorted(a) if a[i] != b[i]]
    print(f"\nvllm lane: {what}: {len(a) - len(diverged)} of {len(a)} records equal to the transformers engine's")
    for row in diverged[:5]:
        print("  diverged:", row)
    return 1 - len(diverged) / len(a), diverged


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    """A tiny text-only judge trained for a few steps on Yes / No / Open answers (a random model's
    greedy choice is a coin toss between near-equal logits)."""
    from adamllm.backbones.causal_lm import CausalLMAdapter
    from adamllm.backbones.tiny import build_tiny
    from adamllm.plugins.sft.config import SFTConfig
    from adamllm.plugins.sft.trainer import SFTTrainer

    work = tmp_path_factory.mktemp("vllm-judge")
    checkpoint = build_tiny("causal_lm", work / "base", size="small", seed=0)
    labels = ("Yes", "No", "Open")
    records = [{"id": f"j{i}", "messages": [
        {"role": "user", "content": f"Question: What colour is shape {i}? Informative answer: it is {c}. "
                                    f"Precise answer: {c}. Consistent?"},
        {"role": "assistant", "content": labels[i % 3]}]}
        for i, c in enumerate(("red", "green", "blue", "yellow") * 6)]
    SFTTrainer(SFTConfig(max_steps=30, batch_size=8, learning_rate=2e-3, warmup_ratio=0.0)).train(
        CausalLMAdapter.from_pretrained(checkpoint), records, work / "trained")
    return work / "trained" / "model"


def test_synthesize_and_filter_through_vllm_write_what_the_transformers_engine_writes(tmp_path, judge):
    import yaml

    from adamllm.domains.toyshapes import GeneralModelSettings, build_general_model, demo_world
    from adamllm.domains.toyshapes.demo import DemoSettings, row_configs

    # the default world: the --fast world's synthesizer (160 seed images) may write no parsable task
    world = demo_world(tmp_path / "world", seed=0)
    general = build_general_model(world, tmp_path / "general", GeneralModelSettings.for_world(False), echo=print)
    method = row_configs(DemoSettings(), general, ("adamllm",))["adamllm"]  # the demo's synthesizer
    judge_model = {"type": "causal_lm", "model": str(judge), "max_length": 2048}
    common = {"seed": 0, "domain": {"type": "toyshapes", "limit": PAIRS},
              "filter": {"type": "consistency", "model": judge_model, "batch_size": 16}}
    reference = {**common, "output_dir": "transformers", "stages": ["tune", "synthesize", "filter"],
                 "data": {"tune": "world/general"}, "synthesizer": method["synthesizer"]}
    (tmp_path / "transformers.yaml").write_text(yaml.safe_dump(reference))
    adamllm_run(tmp_path / "transformers.yaml")
    tuned = tmp_path / "transformers" / "tune" / "model"

    synthesizer = method["synthesizer"]
    on_vllm = {**common, "output_dir": "vllm", "stages": ["synthesize", "filter"],
               "synthesizer": {**synthesizer, "model": {**synthesizer["model"], "model": str(tuned), "engine": "vllm"}},
               "filter": {**common["filter"], "model": {**judge_model, "engine": "vllm"}}}
    (tmp_path / "vllm.yaml").write_text(yaml.safe_dump(on_vllm))
    adamllm_run(tmp_path / "vllm.yaml")

    fields = ("instruction", "precise", "informative", "raw")
    expected = rows(tmp_path / "transformers" / "synthesize" / "triplets.jsonl", fields)
    got = rows(tmp_path / "vllm" / "synthesize" / "triplets.jsonl", fields)
    assert len(expected) >= PAIRS // 2  # a tuned synthesizer: most pairs give a parsable triplet
    share, diverged = agreement(expected, got, "synthesize (tuned tiny Qwen2-VL), triplets")
    assert share >= 0.95, diverged
    verdicts = "filter/verdicts.jsonl"
    share, diverged = agreement(rows(tmp_path / "transformers" / verdicts, ("verdict", "raw")),
                                rows(tmp_path / "vllm" / verdicts, ("verdict", "raw")), "filter (tiny judge), verdicts")
    assert share >= 0.95, diverged
    stats = json.loads((tmp_path / "vllm" / "filter" / "stats.json").read_text())
    assert "vllm" in json.dumps(stats)


def test_the_released_synthesizer_profile_runs_through_vllm(tmp_path):
    """The released synthesizer's layout and prompt profile (a tiny stand-in shipped as the released
    checkpoint is: ``tests/synthesis/released_standin.py``, at the size vLLM's CPU attention takes),
    tuned 4 epochs on the toy world's general seed folder, then the synthesize stage from the tuned model with the
    transformers engine and with ``engine: vllm``: the same triplets and raw generations."""
    import importlib.util

    import yaml

    from adamllm.testing.data import write_pairs

    spec = importlib.util.spec_from_file_location(
        "released_standin", Path(__file__).parents[1] / "synthesis" / "released_standin.py")
    standin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(standin)
    standin.build_released_standin(tmp_path / "base", size="small")
    from adamllm.domains.toyshapes import demo_world

    world = demo_world(tmp_path / "world", seed=0, fast=True)  # its general seed folder: 160 images
    pairs = write_pairs(tmp_path / "pairs", n=12)
    model = {"type": "llava_next", "model": "base"}
    synthesizer = {"type": "adamllm", "max_new_tokens": 160, "batch_size": 4, "model": model}
    reference = {"output_dir": "transformers", "seed": 0, "stages": ["tune", "synthesize"],
                 "data": {"tune": str(world.general), "synthesize": str(pairs)}, "synthesizer": synthesizer,
                 "trainer": {"type": "sft", "num_epochs": 4, "batch_size": 8, "learning_rate": 1.0e-3,
                             "lr_scheduler": "constant", "warmup_ratio": 0.0}}
    (tmp_path / "transformers.yaml").write_text(yaml.safe_dump(reference))
    ran = adamllm_run(tmp_path / "transformers.yaml")
    assert "[tune] conversations in prompt format llava_llama_3" in ran.stdout
    tuned = tmp_path / "transformers" / "tune" / "model"
    on_vllm = {"output_dir": "on-vllm", "seed": 0, "stages": ["synthesize"], "data": {"synthesize": str(pairs)},
               "synthesizer": {**synthesizer, "model": {**model, "model": str(tuned), "engine": "vllm"}}}
    (tmp_path / "vllm.yaml").write_text(yaml.safe_dump(on_vllm))
    adamllm_run(tmp_path / "vllm.yaml")

    fields = ("instruction", "precise", "informative", "raw")
    expected = rows(tmp_path / "transformers" / "synthesize" / "triplets.jsonl", fields)
    assert expected, "the tuned stand-in wrote no parsable triplet"
    share, diverged = agreement(expected, rows(tmp_path / "on-vllm" / "synthesize" / "triplets.jsonl", fields),
                                "synthesize (released profile, tuned LLaVA-NeXT stand-in), triplets")
    assert share >= 0.95, diverged
