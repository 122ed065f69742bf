"""Time to the first optimizer step and peak RSS of the sft trainer, by dataset size and image check.

    python bench/train_scale.py                      # 1K and 4K records
    python bench/train_scale.py --records 1000 10000 100000 --modes decode header
    python bench/train_scale.py --records 1000 10000 100000 1000000 --modes streamed

Each (records, image_check) pair runs in its own process (so peak RSS is its own): a tiny
qwen2_vl at a 448 x 448 pixel budget, records of one 448 x 448 PNG each (a pool of 500 files),
``max_steps: 1``. ``processor`` is the old path (the image processor on every image before step
1, no cache), ``decode`` decodes and checks each image but counts its tokens from its size,
``header`` reads only each image's header; each ``rerun`` is the same run again, which reads the
encoded set from ``OUT/train/encoded/``. ``streamed`` is ``streaming: true``: the records read
through a byte-offset index and encoded per batch, nothing per record before step 1. Ratios are
against ``processor`` at the same size, measured in this run (none without ``processor``); the
last table gives each mode's time to first step and peak RSS against its own smallest size.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

POOL = 500
SIDE = 448


def make_data(folder: Path, records: int, side: int = SIDE) -> Path:
    from PIL import Image

    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    for i in range(POOL):
        path = images / f"{i:04d}.png"
        if not path.exists():
            Image.new("RGB", (side, side), (i % 256, (7 * i) % 256, 90)).save(path)
    mix = folder / f"mix-{records}.jsonl"
    if not mix.exists():
        with mix.open("w") as out:
            for i in range(records):
                out.write(json.dumps({"id": f"r{i}", "images": [f"images/{i % POOL:04d}.png"], "messages": [
                    {"role": "user", "content": "<image>Describe the picture."},
                    {"role": "assistant", "content": f"A square of colour number {i % 97}."}]}) + "\n")
    return mix


def child(checkpoint: str, mix: str, mode: str, out: str) -> None:
    from adamllm.backbones.families import ADAPTERS
    from adamllm.plugins.sft.config import SFTConfig
    from adamllm.plugins.sft.streaming import training_records
    from adamllm.plugins.sft.trainer import SFTTrainer

    started = time.perf_counter()
    streamed = mode == "streamed"
    records, root = training_records(mix, streaming=streamed)
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(checkpoint, min_pixels=SIDE * SIDE, max_pixels=SIDE * SIDE)
    config = SFTConfig(max_steps=1, batch_size=4, learning_rate=1e-4, log_every=1, streaming=streamed,
                       image_check="decode" if streamed else mode,
                       encode_cache=mode not in ("processor", "streamed"))  # the baseline: the trainer as it was
    summary = SFTTrainer(config).train(adapter, records, out, image_root=root, seed=0, resume=False)
    total = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB on Linux
    print(json.dumps({"first_step_s": round(total, 2), "encode_s": summary["encode_seconds"], "rss_mb": round(rss),
                      "from_sizes": summary["image_tokens_from_sizes"], "cached": summary["encoded_from_cache"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--modes", nargs="+", default=["processor", "decode", "header"],
                        choices=["processor", "decode", "header", "streamed"])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from adamllm.backbones.tiny import build_tiny

    work = Path(tempfile.mkdtemp(prefix="train-scale-"))
    checkpoint = build_tiny("qwen2_vl", work / "qwen2_vl", seed=0)
    rows = []
    for records in args.records:
        mix = make_data(work / "data", records)
        baseline = None
        runs = [(mode, mode) for mode in args.modes]
        runs += [(f"{mode} rerun", mode) for mode in args.modes if mode in ("decode", "header")]  # the cache
        for label, mode in runs:
            out = subprocess.run([sys.executable, __file__, "--child", str(checkpoint), str(mix), mode,
                                  str(work / f"out-{records}-{mode}")], capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            baseline = baseline or (result if mode == "processor" else None)
            ratio = f"{baseline['first_step_s'] / result['first_step_s']:.1f}x" if baseline else "-"
            rows.append((records, label, result, ratio))
            print(f"{records:>7} records  {label:<15}  first step {result['first_step_s']:7.1f} s "
                  f"(encoding {result['encode_s']:6.1f} s)  peak RSS {result['rss_mb']:5d} MB  "
                  f"faster than processor: {ratio}", flush=True)
    print("\n| records | image_check | time to first step (s) | of which encoding (s) | peak RSS (MB) | vs processor |")
    print("|---:|---|---:|---:|---:|---:|")
    for records, mode, r, ratio in rows:
        print(f"| {records} | {mode} | {r['first_step_s']} | {r['encode_s']} | {r['rss_mb']} | {ratio} |")
    print("\n| image_check | records | time to first step vs smallest | peak RSS vs smallest |")
    print("|---|---:|---:|---:|")
    smallest: dict[str, dict] = {}
    for records, mode, r, _ in rows:
        base = smallest.setdefault(mode, r)
        print(f"| {mode} | {records} | {r['first_step_s'] / base['first_step_s']:.2f}x | "
              f"{r['rss_mb'] / base['rss_mb']:.2f}x |")


if __name__ == "__main__":
    main()
