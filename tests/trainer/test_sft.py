"""The sft trainer on tiny real models: learning, resume, DDP, freezing, LoRA, length, export."""
import json
import subprocess
import sys

import pytest
import torch

from adamllm.backbones.families import ADAPTERS
from adamllm.plugins.sft.config import SFTConfig
from adamllm.plugins.sft.data import load_records
from adamllm.plugins.sft.trainer import SFTTrainer, TrainerError
from adamllm.testing.data import write_mix


def train(family, checkpoint, data_dir, out, seed=0, **options):
    records, root = load_records(write_mix(data_dir, n=options.pop("n", 12), **options.pop("mix", {})))
    adapter = ADAPTERS[family].from_pretrained(checkpoint)
    stop = options.pop("stop_after_steps", None)
    resume = options.pop("resume", True)
    config = SFTConfig(**{"learning_rate": 3e-3, "batch_size": 4, "num_epochs": 4, "warmup_ratio": 0.0, **options})
    summary = SFTTrainer(config).train(adapter, records, out, image_root=root, seed=seed, backbone=family,
                                       stop_after_steps=stop, resume=resume)
    return adapter, summary


def logits(model, adapter, records_dir):
    records, root = load_records(records_dir / "mix.jsonl", limit=3)
    batch = adapter.collate([adapter.encode(r["messages"], r["images"], image_root=root) for r in records])
    batch.pop("labels")
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("family", ["qwen2_vl", "llava_next", "mllama"])
def test_training_lowers_loss_and_output_reloads_with_transformers(family, tiny_checkpoints, tmp_path):
    from transformers import AutoModelForImageTextToText

    adapter, summary = train(family, tiny_checkpoints(family), tmp_path / "data", tmp_path / "out", num_epochs=8)
    assert summary["steps"] == 24 and summary["completed"]
    assert summary["final_loss"] < 0.75 * summary["first_loss"]
    losses = [json.loads(line)["loss"] for line in (tmp_path / "out" / "loss.jsonl").read_text().splitlines()]
    assert len(losses) == 24 and (tmp_path / "out" / "loss_curve.png").stat().st_size > 1000
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "out" / "model")
    assert torch.equal(logits(reloaded, adapter, tmp_path / "data"), logits(adapter.model, adapter, tmp_path / "data"))
    for name in ("chat_template.jinja", "processor_config.json", "tokenizer.json", "model.safetensors"):
        assert (tmp_path / "out" / "model" / name).exists()


def test_labelled_only_head_gives_the_same_loss(tiny_checkpoints, tmp_path):
    from adamllm.plugins.sft.loss import LabelledLM

    records, root = load_records(write_mix(tmp_path, n=4))
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(tiny_checkpoints("qwen2_vl"))
    batch = adapter.collate([adapter.encode(r["messages"], r["images"], image_root=root) for r in records])
    fast, n_fast = LabelledLM(adapter.model, True)(**batch)
    slow, n_slow = LabelledLM(adapter.model, False)(**batch)
    assert n_fast == n_slow > 0
    assert abs(fast.item() - slow.item()) < 1e-5


@pytest.mark.parametrize("family", ["qwen2_vl", "llava_next"])
def test_packed_training_equals_padded_training(family, tiny_checkpoints, tmp_path):
    """Same batches, packed into one row or padded: the trained parameters agree."""
    options = dict(num_epochs=2, group_by_length=True, n=8)
    packed, packed_summary = train(family, tiny_checkpoints(family), tmp_path / "data", tmp_path / "packed", **options)
    padded, padded_summary = train(family, tiny_checkpoints(family), tmp_path / "data", tmp_path / "padded",
                                   packing=False, **options)
    assert packed_summary["packing"] and packed_summary["padding_fraction"] == 0.0
    assert not padded_summary["packing"] and padded_summary["padding_fraction"] > 0
    assert abs(packed_summary["final_loss"] - padded_summary["final_loss"]) < 1e-4
    padded_params = dict(padded.model.named_parameters())
    initial = dict(ADAPTERS[family].from_pretrained(tiny_checkpoints(family)).model.named_parameters())
    moved = max((p - initial[n]).abs().max().item() for n, p in padded_params.items())
    differ = max((p - padded_params[n]).abs().max().item() for n, p in packed.model.named_parameters())
    # gradients agree to ~1e-7 (contract check); Adam's normalisation of near-zero gradients turns
    # that rounding into at most ~2e-5 after 4 steps of lr 3e-3, while training moved them ~7.5e-3
    assert moved > 5e-3 and differ < 1e-4, (moved, differ)
    assert packed.model.config.get_text_config()._attn_implementation == "sdpa"  # restored after training


def test_mllama_is_not_packed(tiny_checkpoints, tmp_path):
    _, summary = train("mllama", tiny_checkpoints("mllama"), tmp_path / "data", tmp_path / "out", max_steps=1)
    assert summary["packing"] is False and summary["group_by_length"] is True


def test_resume_equals_uninterrupted_run(tiny_checkpoints, tmp_path):
    options = dict(batch_size=2, gradient_accumulation_steps=2, num_epochs=3, save_every=100)
    ckpt = tiny_checkpoints("qwen2_vl")
    full, _ = train("qwen2_vl", ckpt, tmp_path / "data", tmp_path / "full", **options)
    _, first = train("qwen2_vl", ckpt, tmp_path / "data", tmp_path / "resumed", stop_after_steps=5, **options)
    assert first["steps"] == 5 and not first["completed"]
    resumed, second = train("qwen2_vl", ckpt, tmp_path / "data", tmp_path / "resumed", **options)
    assert second["resumed_from"].endswith("step-5") and second["steps"] == full_steps(tmp_path / "full")
    full_params = dict(full.model.named_parameters())
    for name, param in resumed.model.named_parameters():
        assert torch.allclose(param, full_params[name], atol=1e-6, rtol=0), name
    full_losses = (tmp_path / "full" / "loss.jsonl").read_text().splitlines()
    resumed_losses = (tmp_path / "resumed" / "loss.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in resumed_losses] == [json.loads(x)["step"] for x in full_losses]


def full_steps(out):
    return json.loads((out / "summary.json").read_text())["steps"]


def test_no_resume_starts_over(tiny_checkpoints, tmp_path):
    ckpt = tiny_checkpoints("qwen2_vl")
    train("qwen2_vl", ckpt, tmp_path / "data", tmp_path / "out", stop_after_steps=2, num_epochs=1)
    _, summary = train("qwen2_vl", ckpt, tmp_path / "data", tmp_path / "out", resume=False, num_epochs=1)
    assert summary["resumed_from"] is None and summary["steps"] == 3


def test_frozen_groups_are_bit_identical(tiny_checkpoints, tmp_path):
    ckpt = tiny_checkpoints("llava_next")
    before = {n: p.detach().clone() for n, p in ADAPTERS["llava_next"].from_pretrained(ckpt).model.named_parameters()}
    adapter, _ = train("llava_next", ckpt, tmp_path / "data", tmp_path / "out", freeze=["vision", "projector"],
                       num_epochs=1)
    groups = adapter.module_groups()
    after = dict(adapter.model.named_parameters())
    for name in groups["vision"] + groups["projector"]:
        assert torch.equal(after[name], before[name]), name
    assert any(not torch.equal(after[n], before[n]) for n in groups["language"])


def test_lora_merged_export_equals_unmerged_adapter(tiny_checkpoints, tmp_path):
    from peft import PeftModel

    from adamllm.export import export_run
    from adamllm.registry import PluginManager

    ckpt = tiny_checkpoints("mllama")
    adapter, summary = train("mllama", ckpt, tmp_path / "data", tmp_path / "out", mode="lora", learning_rate=1e-2)
    assert summary["final_loss"] < summary["first_loss"]
    pm = PluginManager(no_plugins=True)
    merged_dir = export_run(tmp_path / "out", tmp_path / "merged", pm, merge_lora=True)
    adapter_dir = export_run(tmp_path / "out", tmp_path / "lora", pm)
    assert (adapter_dir / "adapter_model.safetensors").exists() and (adapter_dir / "chat_template.jinja").exists()
    base = ADAPTERS["mllama"].from_pretrained(ckpt)
    unmerged = PeftModel.from_pretrained(base.model, adapter_dir)
    merged = ADAPTERS["mllama"].from_pretrained(merged_dir).model
    a, b = logits(unmerged, base, tmp_path / "data"), logits(merged, base, tmp_path / "data")
    assert torch.allclose(a, b, atol=1e-5, rtol=0)
    assert not torch.allclose(a, logits(ADAPTERS["mllama"].from_pretrained(ckpt).model, base, tmp_path / "data"))


def test_over_long_samples_are_dropped_and_counted(tiny_checkpoints, tmp_path):
    records, root = load_records(write_mix(tmp_path / "data", n=12, long_every=4))
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(tiny_checkpoints("qwen2_vl"), max_length=200)
    summary = SFTTrainer(SFTConfig(batch_size=4, max_steps=2)).train(adapter, records, tmp_path / "out",
                                                                    image_root=root)
    assert summary["dropped"] == {"too_long": 3} and summary["samples"] == 9
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["dropped"] == {"too_long": 3}
    assert "more than max_length=200" in summary["drop_examples"][0]


def test_two_stage_trains_captions_then_tasks(tiny_checkpoints, tmp_path):
    _, summary = train("qwen2_vl", tiny_checkpoints("qwen2_vl"), tmp_path / "data", tmp_path / "out",
                       two_stage=True, num_epochs=1, mix={"two_stage": True})
    assert summary["stages"] == 2 and summary["completed"]
    with pytest.raises(TrainerError, match="'stage': 1 or 2"):
        train("qwen2_vl", tiny_checkpoints("qwen2_vl"), tmp_path / "d2", tmp_path / "o2", two_stage=True)


def test_qlora_on_cpu_is_a_clear_error(tiny_checkpoints, tmp_path):
    with pytest.raises(TrainerError, match="needs a CUDA GPU"):
        train("qwen2_vl", tiny_checkpoints("qwen2_vl"), tmp_path / "data", tmp_path / "out", mode="qlora")


DDP_SCRIPT = """
import json, sys
from functools import partial
from pathlib import Path

import torch
from accelerate import PartialState, debug_launcher

from adamllm.backbones.families import ADAPTERS
from adamllm.plugins.sft.config import SFTConfig
from adamllm.plugins.sft.streaming import training_records
from adamllm.plugins.sft.trainer import SFTTrainer


def worker(checkpoint, data_dir, out_dir, streaming):
    records, root = training_records(data_dir / "mix.jsonl", streaming=streaming)
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(checkpoint)
    summary = SFTTrainer(SFTConfig(batch_size=2, max_steps=3, learning_rate=1e-2, warmup_ratio=0,
                                   streaming=streaming)).train(adapter, records, out_dir, image_root=root)
    state = PartialState()
    flat = torch.cat([p.detach().flatten() for p in adapter.model.parameters()])
    (out_dir / f"rank{state.process_index}.json").write_text(json.dumps(
        {"world": state.num_processes, "sum": flat.double().sum().item(), "first": flat[:50].tolist(),
         "processes": summary["processes"]}))


if __name__ == "__main__":
    checkpoint, data_dir, out_dir = map(Path, sys.argv[1:4])
    debug_launcher(partial(worker, checkpoint, data_dir, out_dir, sys.argv[4] == "streamed"), num_processes=2)
"""


def test_two_cpu_processes_train_in_sync_and_streamed_batches_train_the_same(tiny_checkpoints, tmp_path):
    """DDP on 2 CPU processes (gloo): the ranks stay equal; streamed (each rank reads and encodes
    only its own batches) they end with the same weights as with every record encoded first."""
    # a fresh interpreter: forking a process whose torch thread pools already ran can deadlock
    write_mix(tmp_path / "data", n=8)
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    runs = {}
    for how in ("ahead", "streamed"):
        out = tmp_path / how
        out.mkdir()
        result = subprocess.run([sys.executable, str(script), str(tiny_checkpoints("qwen2_vl")),
                                 str(tmp_path / "data"), str(out), how], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        ranks = runs[how] = [json.loads((out / f"rank{i}.json").read_text()) for i in range(2)]
        assert all(r["world"] == 2 and r["processes"] == 2 for r in ranks)
        assert ranks[0]["first"] == ranks[1]["first"] and ranks[0]["sum"] == ranks[1]["sum"]
    assert runs["ahead"][0]["first"] == runs["streamed"][0]["first"]
    assert runs["ahead"][0]["sum"] == runs["streamed"][0]["sum"]
    base = torch.cat([p.flatten() for p in ADAPTERS["qwen2_vl"].from_pretrained(tiny_checkpoints("qwen2_vl")).model.parameters()])
    assert base[:50].tolist() != runs["ahead"][0]["first"]  # they trained


def test_export_cli_full_model_reloads_with_same_logits(tiny_checkpoints, tmp_path):
    adapter, _ = train("qwen2_vl", tiny_checkpoints("qwen2_vl"), tmp_path / "data", tmp_path / "run" / "train",
                       num_epochs=1)
    result = subprocess.run([sys.executable, "-m", "adamllm.cli", "export", str(tmp_path / "run"),
                             str(tmp_path / "exported")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    expected = logits(adapter.model, adapter, tmp_path / "data")
    torch.save(expected, tmp_path / "expected.pt")
    records, root = load_records(tmp_path / "data" / "mix.jsonl", limit=3)
    batch = adapter.collate([adapter.encode(r["messages"], r["images"], image_root=root) for r in records])
    batch.pop("labels")
    torch.save(dict(batch), tmp_path / "batch.pt")
    probe = (
        "import sys, torch\nfrom transformers import AutoModelForImageTextToText as A\n"
        f"m = A.from_pretrained({str(tmp_path / 'exported')!r}).eval()\n"
        f"batch = torch.load({str(tmp_path / 'batch.pt')!r}, weights_only=True)\n"
        f"expected = torch.load({str(tmp_path / 'expected.pt')!r}, weights_only=True)\n"
        "with torch.no_grad():\n    out = m(**batch).logits\n"
        "assert 'adamllm' not in sys.modules\nprint(torch.equal(out, expected))\n")
    check = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert check.stdout.strip() == "True", check.stderr
    missing = subprocess.run([sys.executable, "-m", "adamllm.cli", "export", str(tmp_path / "data"), str(tmp_path / "x")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "no trained run" in missing.stderr


def test_gradient_checkpointing_lora_and_bf16_autocast_train(tiny_checkpoints, tmp_path):
    # a fresh interpreter: accelerate keeps one mixed-precision setting per process
    script = (
        "import sys, json\n"
        "from adamllm.backbones.families import ADAPTERS\n"
        "from adamllm.plugins.sft.config import SFTConfig\n"
        "from adamllm.plugins.sft.data import load_records\n"
        "from adamllm.plugins.sft.trainer import SFTTrainer\n"
        "records, root = load_records(sys.argv[2])\n"
        "adapter = ADAPTERS['qwen2_vl'].from_pretrained(sys.argv[1])\n"
        "cfg = SFTConfig(mode='lora', gradient_checkpointing=True, mixed_precision='bf16', batch_size=4,\n"
        "                num_epochs=6, learning_rate=1e-2, warmup_ratio=0, lora={'modules_to_save': ['merger']})\n"
        "s = SFTTrainer(cfg).train(adapter, records, sys.argv[3], image_root=root)\n"
        "print(json.dumps({'first': s['first_loss'], 'final': s['final_loss'], 'steps': s['steps']}))\n")
    mix = write_mix(tmp_path / "data", n=8)
    result = subprocess.run([sys.executable, "-c", script, str(tiny_checkpoints("qwen2_vl")), str(mix),
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 12 and summary["final"] < summary["first"]


def test_two_stage_resume_inside_stage_two_equals_uninterrupted(tiny_checkpoints, tmp_path):
    options = dict(two_stage=True, batch_size=2, num_epochs=2, mix={"two_stage": True})
    ckpt = tiny_checkpoints("qwen2_vl")
    full, _ = train("qwen2_vl", ckpt, tmp_path / "data", tmp_path / "full", **options)
    # stage 1: 6 captions, batch 2, 2 epochs = 6 steps; stop 2 steps into stage 2
    _, first = train("qwen2_vl", ckpt, tmp_path / "data", tmp_path / "resumed", stop_after_steps=8, **options)
    assert not first["completed"]
    resumed, second = train("qwen2_vl", ckpt, tmp_path / "data", tmp_path / "resumed", **options)
    assert second["completed"] and second["resumed_from"] is not None
    full_params = dict(full.model.named_parameters())
    for name, param in resumed.model.named_parameters():
        assert torch.allclose(param, full_params[name], atol=1e-6, rtol=0), name


def test_encoding_before_step_1_shows_a_bar_from_enough_records(tiny_checkpoints, tmp_path, monkeypatch, capsys):
    from adamllm.plugins.sft import samples as samples_module

    train("qwen2_vl", tiny_checkpoints("qwen2_vl"), tmp_path / "data", tmp_path / "few", n=8, max_steps=1)
    assert "encode" not in capsys.readouterr().err  # 8 records: below the threshold, no bar
    monkeypatch.setattr(samples_module, "ENCODING_BAR_FROM", 8)
    train("qwen2_vl", tiny_checkpoints("qwen2_vl"), tmp_path / "data", tmp_path / "many", n=8, max_steps=1)
    err = capsys.readouterr().err
    assert "encode: 100%" in err and "8/8" in err
    monkeypatch.setattr(samples_module, "STREAMING_HINT_FROM", 8)  # many: the bar says what skips it
    train("qwen2_vl", tiny_checkpoints("qwen2_vl"), tmp_path / "data", tmp_path / "lots", n=8, max_steps=1)
    assert "encode (trainer streaming: true skips this): 100%" in capsys.readouterr().err


def test_batches_collated_in_worker_processes_train_exactly_the_same(tiny_checkpoints, tmp_path):
    """Two workers collate ahead of the step: same batches, same losses, same weights; a resume too."""
    ckpt = tiny_checkpoints("qwen2_vl")
    options = dict(batch_size=2, gradient_accumulation_steps=2, num_epochs=2, n=12)
    here, here_summary = train("qwen2_vl", ckpt, tmp_path / "data", tmp_path / "here", dataloader_workers=0, **options)
    ahead, ahead_summary = train("qwen2_vl", ckpt, tmp_path / "data", tmp_path / "ahead", dataloader_workers=2,
                                 **options)
    assert here_summary["dataloader_workers"] == 0 and ahead_summary["dataloader_workers"] == 2
    losses = {name: (tmp_path / name / "loss.jsonl").read_text() for name in ("here", "ahead")}
    assert losses["here"] == losses["ahead"] and len(losses["here"].splitlines()) == 6
    for (name, a), b in zip(here.model.named_parameters(), ahead.model.parameters()):
        assert torch.equal(a, b), name
    _, stopped = train("qwen2_vl", ckpt, tmp_path / "data", tmp_path / "resumed", dataloader_workers=2,
                       stop_after_steps=4, save_every=100, **options)
    assert not stopped["completed"]
    resumed, _ = train("qwen2_vl", ckpt, tmp_path / "data", tmp_path / "resumed", dataloader_workers=2, **options)
    assert (tmp_path / "resumed" / "loss.jsonl").read_text() == losses["here"]
