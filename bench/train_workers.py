"""Steady-state training tokens/s with batches collated in worker processes, against collating in
the training process (``dataloader_workers: 0``, the trainer as it was), in one run.

    python bench/train_workers.py                   # 448 x 448 images, workers 0 1 2
    python bench/train_workers.py --side 56 --workers 0 2

A tiny qwen2_vl at a pixel budget of the image size, records of one image each (448 x 448: the
image processor's work per batch is a large share of a tiny model's step, as it is of a real
model's on a fast GPU), ``--steps`` steps of batch 8 after the encoding; each setting in its own
process. Ratios are against 0 workers.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_scale import make_data  # noqa: E402  (the same synthetic mix)


def child(checkpoint: str, mix: str, side: int, workers: int, steps: int, out: str) -> None:
    from adamllm.backbones.families import ADAPTERS
    from adamllm.plugins.sft.config import SFTConfig
    from adamllm.plugins.sft.data import load_records
    from adamllm.plugins.sft.trainer import SFTTrainer

    records, root = load_records(mix)
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(checkpoint, min_pixels=side * side, max_pixels=side * side)
    config = SFTConfig(max_steps=steps, batch_size=8, learning_rate=1e-4, dataloader_workers=workers,
                       encode_cache=False)
    summary = SFTTrainer(config).train(adapter, records, out, image_root=root, seed=0, resume=False)
    print(json.dumps({"tokens_per_s": summary["tokens_per_second"], "train_s": summary["train_seconds"],
                      "final_loss": summary["final_loss"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=448)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        checkpoint, mix, side, workers, steps, out = args.child
        child(checkpoint, mix, int(side), int(workers), int(steps), out)
        return
    from adamllm.backbones.tiny import build_tiny

    work = Path(tempfile.mkdtemp(prefix="train-workers-"))
    checkpoint = build_tiny("qwen2_vl", work / "qwen2_vl", seed=0)
    mix = make_data(work / "data", args.steps * 8, side=args.side)
    rows, baseline = [], None
    for workers in args.workers:
        done = subprocess.run([sys.executable, __file__, "--child", str(checkpoint), str(mix), str(args.side),
                               str(workers), str(args.steps), str(work / f"out-{workers}")],
                              capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        baseline = baseline or (result if workers == 0 else None)
        ratio = f"{result['tokens_per_s'] / baseline['tokens_per_s']:.2f}x" if baseline else "-"
        rows.append((workers, result, ratio))
        print(f"workers {workers}: {result['tokens_per_s']:8.1f} tokens/s  ({result['train_s']} s, final loss "
              f"{result['final_loss']:.4f})  vs 0 workers: {ratio}", flush=True)
    print(f"\n| {args.side} px images, dataloader_workers | tokens/s | vs 0 | final loss |")
    print("|---:|---:|---:|---:|")
    for workers, r, ratio in rows:
        print(f"| {workers} | {r['tokens_per_s']} | {ratio} | {r['final_loss']:.4f} |")


if __name__ == "__main__":
    main()
