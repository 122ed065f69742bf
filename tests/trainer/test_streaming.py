"""``streaming: true``: records read and encoded per batch; same training, nothing before step 1."""
import json

import pytest
import torch

from adamllm.backbones.families import ADAPTERS
from adamllm.plugins.sft.config import SFTConfig
from adamllm.plugins.sft.streaming import StreamedRecords, training_records
from adamllm.plugins.sft.trainer import SFTTrainer, TrainerError
from adamllm.quarantine import Quarantine
from adamllm.testing.data import write_mix

BASE = {"learning_rate": 3e-3, "batch_size": 2, "num_epochs": 2, "warmup_ratio": 0.0}


def train(family, checkpoint, mix, out, *, streaming, quarantine=None, **options):
    adapter = ADAPTERS[family].from_pretrained(checkpoint)
    records, root = training_records(mix, streaming=streaming, quarantine=quarantine)
    stop = options.pop("stop_after_steps", None)
    config = SFTConfig(**{**BASE, "streaming": streaming, **options})
    summary = SFTTrainer(config).train(adapter, records, out, image_root=root, seed=0, backbone=family,
                                       stop_after_steps=stop, quarantine=quarantine)
    return adapter, summary


@pytest.mark.parametrize("family,options", [
    ("qwen2_vl", {}),                                     # packed rows
    ("mllama", {"group_by_length": False}),               # padded batches
    ("qwen2_vl", {"two_stage": True}),                    # captions, then tasks
])
def test_streamed_training_equals_encoding_every_record_first(family, options, tiny_checkpoints, tmp_path):
    mix = write_mix(tmp_path / "data", n=10, two_stage=options.get("two_stage", False))
    ckpt = tiny_checkpoints(family)
    ahead, ahead_summary = train(family, ckpt, mix, tmp_path / "ahead", streaming=False, **options)
    streamed, summary = train(family, ckpt, mix, tmp_path / "streamed", streaming=True, **options)
    losses = {name: (tmp_path / name / "loss.jsonl").read_text() for name in ("ahead", "streamed")}
    assert losses["ahead"] == losses["streamed"] and len(losses["ahead"].splitlines()) >= 8
    for (name, a), b in zip(ahead.model.named_parameters(), streamed.model.parameters()):
        assert torch.equal(a, b), name
    assert summary["streaming"] and summary["samples"] == 10 and summary["dropped"] == {}
    assert summary["padding_fraction"] == ahead_summary["padding_fraction"]


def test_nothing_is_encoded_before_the_first_batch(tiny_checkpoints, tmp_path):
    """One step of batch 2 out of 12 records encodes 2 records (encode still runs: it is counted)."""
    mix = write_mix(tmp_path / "data", n=12)
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(tiny_checkpoints("qwen2_vl"))
    calls = []
    real_encode = adapter.encode
    adapter.encode = lambda *args, **kwargs: calls.append(1) or real_encode(*args, **kwargs)
    records = StreamedRecords(mix)
    SFTTrainer(SFTConfig(**BASE, streaming=True, dataloader_workers=0)).train(
        adapter, records, tmp_path / "out", image_root=records.root, stop_after_steps=1)
    assert len(calls) == 2


def test_streamed_resume_with_workers_equals_the_uninterrupted_run(tiny_checkpoints, tmp_path):
    mix = write_mix(tmp_path / "data", n=12)
    ckpt = tiny_checkpoints("qwen2_vl")
    options = dict(gradient_accumulation_steps=2, dataloader_workers=2, save_every=100)
    full, _ = train("qwen2_vl", ckpt, mix, tmp_path / "full", streaming=True, **options)
    _, first = train("qwen2_vl", ckpt, mix, tmp_path / "resumed", streaming=True, stop_after_steps=3, **options)
    assert first["steps"] == 3 and not first["completed"]
    resumed, second = train("qwen2_vl", ckpt, mix, tmp_path / "resumed", streaming=True, **options)
    assert second["resumed_from"].endswith("step-3")
    assert (tmp_path / "resumed" / "loss.jsonl").read_text() == (tmp_path / "full" / "loss.jsonl").read_text()
    for (name, a), b in zip(full.model.named_parameters(), resumed.model.parameters()):
        assert torch.equal(a, b), name


def test_bad_records_are_quarantined_when_their_batch_meets_them(tiny_checkpoints, tmp_path):
    mix = write_mix(tmp_path / "data", n=8)
    lines = mix.read_text().splitlines()
    missing = json.loads(lines[2])
    missing["images"] = ["images/nowhere.png"]
    long = json.loads(lines[5])
    long["messages"][1]["content"] = "word " * 3000
    lines[2], lines[5] = json.dumps(missing), json.dumps(long)
    lines.insert(4, "{not json")
    mix.write_text("\n".join(lines) + "\n")
    quarantine = Quarantine(tmp_path / "rejected.jsonl", "skip")
    with quarantine:
        _, summary = train("qwen2_vl", tiny_checkpoints("qwen2_vl"), mix, tmp_path / "out", streaming=True,
                           quarantine=quarantine, dataloader_workers=2)
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert sorted(r["where"] for r in rejected) == sorted(f"{mix}:{n}" for n in (3, 5, 7))
    assert {r["kind"] for r in rejected} == {"bad_record", "too_long"}
    assert any("nowhere.png" in r["reason"] for r in rejected) and any("invalid JSON" in r["reason"] for r in rejected)
    assert summary["records"] == 9 and summary["samples"] == 6
    assert summary["dropped"] == {"bad_record": 2, "too_long": 1} and summary["rejected"] == 3
    assert summary["completed"] and summary["steps"] == 10  # 5 batches of 2 per epoch: none came out empty


def test_a_mix_of_only_bad_records_stops_saying_why(tiny_checkpoints, tmp_path):
    mix = write_mix(tmp_path / "data", n=4)
    for image in (tmp_path / "data" / "images").iterdir():
        image.unlink()
    with pytest.raises(TrainerError, match=r"none of the 4 records can be trained on; the first: .*mix.jsonl:[1-4]: unreadable image: .*no such file"):
        train("qwen2_vl", tiny_checkpoints("qwen2_vl"), mix, tmp_path / "out", streaming=True)
    assert not (tmp_path / "out" / "model").exists()


def test_streaming_refuses_length_grouping(tiny_checkpoints, tmp_path):
    mix = write_mix(tmp_path / "data", n=4)
    with pytest.raises(TrainerError, match="group_by_length needs every sample's length"):
        train("qwen2_vl", tiny_checkpoints("qwen2_vl"), mix, tmp_path / "out", streaming=True, group_by_length=True)
