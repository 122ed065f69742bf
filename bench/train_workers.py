"""Steady-state training tokens/s with batches collated in worker processes, against collating in
the training process (``dataloader_workers: 0``, the trainer as it was), in one run.

    python bench/train_workers.py                   # 448 x 448 images, workers 0 1 2
    python bench/train_workers.py --side 56 --workers 0 2
    python bench/train_workers.py --workers 0 2 --streaming   # also streamed (records encoded per batch)
    python bench/train_workers.py --workers 0 1 --threads 1   # the model on one core, a worker on the other

A tiny qwen2_vl at a pixel budget of the image size, records of one image each (448 x 448: the
image processor's work per batch is a large share of a tiny model's step, as it is of a real
model's on a fast GPU), ``--steps`` steps of batch 8 after the encoding; each setting in its own
process. With ``--streaming`` each worker count also runs with ``streaming: true`` (the records read
and encoded per batch, in the workers where there are any: the loop then carries the encoding that
the default trainer does before step 1). ``--threads`` sets the training process's torch threads
(default: torch's own, all cores): with 1 on this 2-core machine the model computes on one core
while one worker prepares the next batches on the other, the situation of a GPU node whose cores
are free. Ratios are against 0 workers without streaming at the same thread count.
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


def child(checkpoint: str, mix: str, side: int, workers: int, steps: int, out: str, streaming: bool,
          threads: int) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    from adamllm.backbones.families import ADAPTERS
    from adamllm.plugins.sft.config import SFTConfig
    from adamllm.plugins.sft.streaming import training_records
    from adamllm.plugins.sft.trainer import SFTTrainer

    records, root = training_records(mix, streaming=streaming)
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(checkpoint, min_pixels=side * side, max_pixels=side * side)
    config = SFTConfig(max_steps=steps, batch_size=8, learning_rate=1e-4, dataloader_workers=workers,
                       encode_cache=False, streaming=streaming)
    summary = SFTTrainer(config).train(adapter, records, out, image_root=root, seed=0, resume=False)
    print(json.dumps({"tokens_per_s": summary["tokens_per_second"], "train_s": summary["train_seconds"],
                      "final_loss": summary["final_loss"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=448)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--streaming", action="store_true", help="also run each worker count streamed")
    parser.add_argument("--threads", type=int, default=0, help="torch threads of the training process (0: torch's)")
    parser.add_argument("--child", nargs=8, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        checkpoint, mix, side, workers, steps, out, streaming, threads = args.child
        child(checkpoint, mix, int(side), int(workers), int(steps), out, streaming == "1", int(threads))
        return
    from adamllm.backbones.tiny import build_tiny

    work = Path(tempfile.mkdtemp(prefix="train-workers-"))
    checkpoint = build_tiny("qwen2_vl", work / "qwen2_vl", seed=0)
    mix = make_data(work / "data", args.steps * 8, side=args.side)
    rows, baseline = [], None
    settings = [(w, False) for w in args.workers] + ([(w, True) for w in args.workers] if args.streaming else [])
    for workers, streaming in settings:
        label = f"{workers}{' streamed' if streaming else ''}"
        done = subprocess.run([sys.executable, __file__, "--child", str(checkpoint), str(mix), str(args.side),
                               str(workers), str(args.steps), str(work / f"out-{workers}-{int(streaming)}"),
                               str(int(streaming)), str(args.threads)], capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        baseline = baseline or (result if workers == 0 and not streaming else None)
        ratio = f"{result['tokens_per_s'] / baseline['tokens_per_s']:.2f}x" if baseline else "-"
        rows.append((label, result, ratio))
        print(f"workers {label}: {result['tokens_per_s']:8.1f} tokens/s  ({result['train_s']} s, final loss "
              f"{result['final_loss']:.4f})  vs 0 workers: {ratio}", flush=True)
    threads = f", {args.threads} torch thread{'s' if args.threads > 1 else ''}" if args.threads else ""
    print(f"\n| {args.side} px images{threads}, dataloader_workers | tokens/s | vs 0 | final loss |")
    print("|---|---:|---:|---:|")
    for label, r, ratio in rows:
        print(f"| {label} | {r['tokens_per_s']} | {ratio} | {r['final_loss']:.4f} |")


if __name__ == "__main__":
    main()
