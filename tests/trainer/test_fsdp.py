"""Two CPU processes (torchrun, gloo): DDP and FSDP2 train as one process does, FSDP2 really shards,
resumes exactly from its sharded checkpoints and exports the model an unsharded run exports."""
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from adamllm.testing.data import write_mix

SCRIPT = """
import json, os, sys
from pathlib import Path

from adamllm.backbones.families import ADAPTERS
from adamllm.plugins.sft.config import SFTConfig
from adamllm.plugins.sft.data import load_records
from adamllm.plugins.sft.trainer import SFTTrainer

checkpoint, mix, out, options = sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
stop = options.pop("stop_after_steps", None)
records, root = load_records(mix)
adapter = ADAPTERS["qwen2_vl"].from_pretrained(checkpoint)
summary = SFTTrainer(SFTConfig(**options)).train(adapter, records, out, image_root=root, seed=0,
                                                 stop_after_steps=stop)
(out / f"summary-rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(summary))
"""

BASE = {"batch_size": 2, "max_steps": 5, "learning_rate": 3e-3, "warmup_ratio": 0.0, "lr_scheduler": "cosine",
        "save_every": 100}
FULL = {}
# no LoRA dropout: its masks depend on how the random stream is split over processes
LORA = {"mode": "lora", "lora": {"dropout": 0.0}, "freeze": ["vision"]}


def launch(tmp_path, checkpoint, mix, out, options, processes):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    args = [str(script), str(checkpoint), str(mix), str(out), json.dumps(options)]
    command = [sys.executable, *args] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    return result


def losses(out):
    return [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]


def weights(folder):
    return load_file(str(next(folder.glob("*.safetensors"))))


@pytest.mark.parametrize("how,options", [("ddp", FULL), ("fsdp", FULL), ("fsdp", LORA)], ids=["ddp-full", "fsdp-full",
                                                                                               "fsdp-lora-frozen"])
def test_two_processes_train_like_one_process_with_twice_the_accumulation(how, options, tiny_checkpoints, tmp_path):
    """2 processes x batch 2 against 1 process x batch 2 x 2 accumulation steps: the same batches, so
    the same losses (within 1e-4) and learning rates at every step and the same exported model."""
    mix = write_mix(tmp_path / "data", n=16)
    ckpt = tiny_checkpoints("qwen2_vl")
    one = launch(tmp_path, ckpt, mix, tmp_path / "one", {**BASE, **options, "gradient_accumulation_steps": 2}, 1)
    assert one.returncode == 0, one.stderr[-3000:]
    two = launch(tmp_path, ckpt, mix, tmp_path / "two", {**BASE, **options, "fsdp": how == "fsdp"}, 2)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(a) == len(b) == 5
    for x, y in zip(a, b):
        assert abs(x["loss"] - y["loss"]) < 1e-4 and x["lr"] == pytest.approx(y["lr"]), (x, y)
    assert b[-1]["lr"] == 0.0  # the schedule ran its length once, not once per process
    ranks = [json.loads((tmp_path / "two" / f"summary-rank{r}.json").read_text()) for r in (0, 1)]
    if how == "fsdp":  # each process holds about half of every weight
        for rank in ranks:
            shares = rank["fsdp"]
            assert shares["blocks"] >= 2 and 0.45 <= shares["held_elements"] / shares["total_elements"] <= 0.55
    else:
        assert "fsdp" not in ranks[0]
    folders = ["model"] + (["adapter"] if options.get("mode") == "lora" else [])
    for folder in folders:
        expected, got = weights(tmp_path / "one" / folder), weights(tmp_path / "two" / folder)
        assert set(expected) == set(got)
        for name in expected:
            assert torch.allclose(expected[name], got[name], atol=1e-4, rtol=0), name
    if options.get("freeze"):
        base = weights(ckpt)
        frozen = [n for n in base if "visual" in n]
        assert frozen and all(torch.equal(base[n], weights(tmp_path / "two" / "model")[n]) for n in frozen)


def test_sharded_checkpoints_resume_exactly_and_only_on_as_many_processes(tiny_checkpoints, tmp_path):
    mix = write_mix(tmp_path / "data", n=16)
    ckpt = tiny_checkpoints("qwen2_vl")
    options = {**BASE, **LORA, "lora": {"dropout": 0.1}, "fsdp": True}  # dropout: each process's RNG is restored
    full = launch(tmp_path, ckpt, mix, tmp_path / "full", options, 2)
    assert full.returncode == 0, full.stderr[-3000:]
    stopped = launch(tmp_path, ckpt, mix, tmp_path / "resumed", {**options, "stop_after_steps": 3}, 2)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    step = tmp_path / "resumed" / "checkpoints" / "step-3"
    assert sorted(p.name for p in step.glob("shard-*")) == ["shard-0-of-2.safetensors", "shard-1-of-2.safetensors"]
    assert not (step / "trainable.safetensors").exists()  # nothing gathered on one process
    one = launch(tmp_path, ckpt, mix, tmp_path / "resumed", {k: v for k, v in options.items() if k != "fsdp"}, 1)
    assert one.returncode != 0 and "written sharded (fsdp) by 2 processes" in one.stderr
    resumed = launch(tmp_path, ckpt, mix, tmp_path / "resumed", options, 2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((tmp_path / "resumed" / "summary-rank0.json").read_text())
    assert summary["resumed_from"].endswith("step-3")
    assert losses(tmp_path / "resumed") == losses(tmp_path / "full")
    for folder in ("model", "adapter"):
        expected, got = weights(tmp_path / "full" / folder), weights(tmp_path / "resumed" / folder)
        assert all(torch.equal(expected[n], got[n]) for n in expected)


def test_two_sharded_processes_killed_mid_run_resume_to_the_uninterrupted_result(tiny_checkpoints, tmp_path):
    """SIGKILL to the whole torchrun process group once a checkpoint exists, then the same command
    again: it resumes from the last complete sharded checkpoint and ends as the uninterrupted run."""
    import signal
    import time

    mix = write_mix(tmp_path / "data", n=16)
    ckpt = tiny_checkpoints("qwen2_vl")
    options = {**BASE, **LORA, "lora": {"dropout": 0.1}, "fsdp": True, "max_steps": 40, "save_every": 4}
    full = launch(tmp_path, ckpt, mix, tmp_path / "full", options, 2)
    assert full.returncode == 0, full.stderr[-3000:]
    script = tmp_path / "train.py"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
               str(ckpt), str(mix), str(tmp_path / "killed"), json.dumps(options)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and not (checkpoints / "step-8" / "state.json").exists() and process.poll() is None:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "model").exists(), "the run finished before it was killed"
    resumed = launch(tmp_path, ckpt, mix, tmp_path / "killed", options, 2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((tmp_path / "killed" / "summary-rank0.json").read_text())
    assert summary["resumed_from"] and int(summary["resumed_from"].rsplit("-", 1)[1]) >= 8
    assert losses(tmp_path / "killed") == losses(tmp_path / "full")
    for folder in ("model", "adapter"):
        expected, got = weights(tmp_path / "full" / folder), weights(tmp_path / "killed" / folder)
        assert all(torch.equal(expected[n], got[n]) for n in expected)
