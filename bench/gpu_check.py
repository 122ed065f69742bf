"""The device check: training and generation speed of a Qwen2-VL-2B-shaped model, in one short run.

    python bench/gpu_check.py                 # on a lent GPU: the 2b model (built here, random weights)
    python bench/gpu_check.py --size tiny     # anywhere: the small tiny model (what CI runs on the CPU)

Builds a random-weight ``qwen2_vl`` checkpoint (``adamllm tiny qwen2_vl DIR --size 2b``: the real
model's 2.21 B parameters; no download), writes a synthetic mix of image-question-answer records,
then measures, each in one process:

* training with the ``sft`` trainer (packed rows; bf16 autocast on a GPU): full fine-tuning and
  LoRA, with SDPA, and with flash-attention 2 where ``flash_attn`` is installed, batches collated
  by the default workers (and once in the training process, to compare); tokens/s, model
  FLOPs utilisation against the GPU's bf16 dense peak (6 N FLOPs per token for full training, 4 N
  for LoRA, N the parameters), first and last loss, peak GPU memory;
* generation with the backbone's batched ``generate`` at batch 1, 16 and 64 (a fixed number of
  new tokens): generated tokens/s and peak GPU memory.

A variant that fails is reported with its error and the others still run. Everything is printed
as a table and written to ``gpu_check.json`` in ``--out`` (default ``$OUT``, the device tool's
folder that comes back, else a temporary folder). The run stays within a few minutes on an H100.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

#: bf16 dense peak FLOP/s by GPU name fragment (NVIDIA's data sheets, SXM parts).
PEAKS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}
SIZES = {"tiny": {"build": "small", "side": 56, "batch": 4, "steps": 3, "new_tokens": 8, "records": 64},
         "2b": {"build": "2b", "side": 448, "batch": 4, "steps": 12, "new_tokens": 32, "records": 256}}


def peak_flops(name: str) -> float | None:
    return next((peak for key, peak in PEAKS.items() if key in name), None)


def make_mix(folder: Path, n: int, side: int) -> Path:
    from PIL import Image

    (folder / "images").mkdir(parents=True, exist_ok=True)
    with (folder / "mix.jsonl").open("w") as out:
        for i in range(n):
            name = f"images/{i:04d}.png"
            Image.new("RGB", (side, side), (i % 256, (31 * i) % 256, 120)).save(folder / name)
            answer = " ".join(["the shapes are drawn in a colour that the question asks about"] * (1 + i % 3))
            out.write(json.dumps({"id": f"r{i}", "images": [name], "messages": [
                {"role": "user", "content": "<image>What colour are the shapes, and how many are there?"},
                {"role": "assistant", "content": answer}]}) + "\n")
    return folder / "mix.jsonl"


def memory(torch, device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None


def train_variant(checkpoint: Path, mix: Path, out: Path, spec: dict, device: str, mode: str, attn: str,
                  workers: int | None = None) -> dict:
    import torch

    from adamllm.backbones.families import ADAPTERS
    from adamllm.plugins.sft.config import SFTConfig
    from adamllm.plugins.sft.data import load_records
    from adamllm.plugins.sft.trainer import SFTTrainer

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    side = spec["side"]
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(checkpoint, device=device, attn_implementation=attn,
                                                   min_pixels=side * side, max_pixels=side * side, max_length=4096)
    records, root = load_records(mix)
    config = SFTConfig(mode=mode, max_steps=spec["steps"], batch_size=spec["batch"], learning_rate=1e-5,
                       lr_scheduler="constant", warmup_ratio=0.0, encode_cache=False, dataloader_workers=workers,
                       mixed_precision="bf16" if device == "cuda" else "no")
    summary = SFTTrainer(config).train(adapter, records, out, image_root=root, seed=0)
    parameters = sum(p.numel() for p in adapter.model.parameters())
    return {"tokens_per_s": summary["tokens_per_second"], "first_loss": summary["first_loss"],
            "final_loss": summary["final_loss"], "steps": summary["steps"], "parameters": parameters,
            "flops_per_token": (6 if mode == "full" else 4) * parameters, "peak_gpu_gb": memory(torch, device),
            "dataloader_workers": summary["dataloader_workers"]}


def generate_variant(checkpoint: Path, mix: Path, spec: dict, device: str, batch: int) -> dict:
    import torch

    from adamllm.backbone import GenerationSettings
    from adamllm.backbones.families import ADAPTERS
    from adamllm.plugins.sft.data import load_records

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    side = spec["side"]
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(checkpoint, device=device, min_pixels=side * side,
                                                   max_pixels=side * side, dtype="bfloat16" if device == "cuda" else "float32")
    records, root = load_records(mix)
    chosen = [records[i % len(records)] for i in range(batch)]
    conversations = [r["messages"][:1] for r in chosen]
    images = [r["images"] for r in chosen]
    n = spec["new_tokens"]
    settings = GenerationSettings(max_new_tokens=n, min_new_tokens=n)
    adapter.generate(conversations[:1], images[:1], GenerationSettings(max_new_tokens=2), image_root=root)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    adapter.generate(conversations, images, settings, image_root=root)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"batch": batch, "new_tokens": batch * n, "seconds": round(seconds, 3),
            "tokens_per_s": round(batch * n / seconds, 1), "peak_gpu_gb": memory(torch, device)}


def attempt(results: dict, name: str, run) -> None:
    started = time.perf_counter()
    try:
        results[name] = {**run(), "wall_s": round(time.perf_counter() - started, 1)}
    except Exception as exc:  # noqa: BLE001 - a check reports every variant, failed ones with their error
        results[name] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
                         "wall_s": round(time.perf_counter() - started, 1)}
        traceback.print_exc()
    print(f"[gpu_check] {name}: {json.dumps(results[name])}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="2b")
    parser.add_argument("--steps", type=int, help="Optimizer steps per training variant.")
    parser.add_argument("--out", help="Folder for gpu_check.json and the scratch files (default: $OUT or a temp folder).")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers

    from adamllm.backbones.tiny import build_tiny

    spec = dict(SIZES[args.size], **({"steps": args.steps} if args.steps else {}))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out or os.environ.get("OUT") or tempfile.mkdtemp(prefix="gpu-check-"))
    work = Path(tempfile.mkdtemp(prefix="gpu-check-work-"))
    name = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or "cpu"
    peak = peak_flops(name) if device == "cuda" else None
    report: dict = {"size": args.size, "device": device, "device_name": name, "bf16_peak_flops": peak,
                    "torch": torch.__version__, "transformers": transformers.__version__, "python": sys.version.split()[0],
                    "flash_attn": importlib.util.find_spec("flash_attn") is not None, "results": {}}
    started = time.perf_counter()
    checkpoint = build_tiny("qwen2_vl", work / "model", size=spec["build"], seed=0)
    report["build_s"] = round(time.perf_counter() - started, 1)
    mix = make_mix(work / "data", spec["records"], spec["side"])
    results = report["results"]
    # (mode, attention, collating workers: None the default, 0 in the training process)
    variants = [("full", "sdpa", None), ("full", "sdpa", 0), ("lora", "sdpa", None)]
    variants += [("full", "flash_attention_2", None)] if report["flash_attn"] else []
    for mode, attn, workers in variants:
        key = f"train {mode} {attn}" + (" workers 0" if workers == 0 else "")
        attempt(results, key, lambda: train_variant(checkpoint, mix, work / key.replace(" ", "-"), spec, device,
                                                    mode, attn, workers))
        result = results[key]
        if peak and "tokens_per_s" in result:
            result["mfu"] = round(result["tokens_per_s"] * result["flops_per_token"] / peak, 4)
    for batch in (1, 16, 64):
        attempt(results, f"generate batch {batch}", lambda: generate_variant(checkpoint, mix, spec, device, batch))
    report["total_s"] = round(time.perf_counter() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print(f"\n{args.size} qwen2_vl on {name} ({device}), torch {torch.__version__}, transformers {transformers.__version__}")
    print("| variant | tokens/s | MFU | loss first -> last | peak GPU GB | wall s |")
    print("|---|---:|---:|---|---:|---:|")
    for key, r in results.items():
        if "error" in r:
            print(f"| {key} | failed: {r['error']} | | | | {r['wall_s']} |")
            continue
        loss = f"{r['first_loss']:.3f} -> {r['final_loss']:.3f}" if "first_loss" in r else ""
        print(f"| {key} | {r['tokens_per_s']} | {r.get('mfu', '')} | {loss} | {r['peak_gpu_gb'] or ''} | {r['wall_s']} |")
    print(f"wrote {out / 'gpu_check.json'} ({report['total_s']} s)")
    failed = [k for k, r in results.items() if "error" in r or not math.isfinite(r.get("tokens_per_s", float("nan")))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
