"""Generation throughput of ``adamllm.generation.generate_all`` against per-sample generation, in one run.

What it measures
    For each family (default the ``small`` tiny Qwen2-VL and LLaVA-NeXT, built offline, seed 0,
    fp32 on CPU) the same deterministic prompts (default 64 single-turn questions of 2-40 words,
    each with one PNG-like RGB image of 56-168 px) are answered greedily with exactly
    ``--new-tokens`` new tokens each (``min_new_tokens = max_new_tokens``, so every configuration
    generates the same number of tokens):

    * ``per-sample``  ``adapter.generate([conversation], [images])`` once per prompt (the baseline:
                      what a caller without batching does);
    * ``engine bN``   ``generate_all(adapter, requests, settings, batch_size=N)``: length-sorted,
                      left-padded batches of N through ``adapter.generate``.

    tok/s = generated tokens (prompts x new tokens) / wall seconds of the whole call, encoding
    included; model loading excluded. ``match`` is the share of answers equal to the per-sample
    answer (greedy decoding: batching should not change them, up to float ties). ``torch`` threads
    are set once (``--threads``, default 2). The machine may be shared: compare ratios within a run.

Usage: ``python bench/generation.py [--prompts 64] [--new-tokens 32] [--batches 1,8,16,32]
[--families qwen2_vl,llava_next] [--size small] [--threads 2] [--out bench/results/generation.json]``
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "generation.json"
WORDS = ("what colour shape is the object in picture describe count many left right above below "
         "small large near far bright dark background foreground people animals text sign").split()


def make_requests(n: int, seed: int = 0) -> list:
    from PIL import Image

    rng = random.Random(seed)
    requests = []
    for _ in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 40)))
        side = rng.choice((56, 84, 112, 140, 168))
        image = Image.new("RGB", (side, rng.choice((56, 112, 168))), tuple(rng.randrange(256) for _ in range(3)))
        requests.append(([{"role": "user", "content": "<image>" + words.capitalize() + "?"}], [image]))
    return requests


def build_adapter(family: str, size: str, work: Path):
    from adamllm.backbone import BackboneConfig
    from adamllm.backbones import families
    from adamllm.backbones.tiny import build_tiny

    classes = {"qwen2_vl": families.Qwen2VLAdapter, "llava_next": families.LlavaNextAdapter}
    model_dir = build_tiny(family, work / f"{family}-{size}", size=size)
    adapter = classes[family](BackboneConfig(model=str(model_dir)))
    adapter.model  # load now, outside every timing
    return adapter


def bench_family(family: str, args, work: Path) -> dict:
    from adamllm.backbone import GenerationSettings
    from adamllm.generation import generate_all

    adapter = build_adapter(family, args.size, work)
    requests = make_requests(args.prompts)
    settings = GenerationSettings(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    tokens = len(requests) * args.new_tokens
    adapter.generate([requests[0][0]], [requests[0][1]], settings)  # warm-up, not timed

    rows = []
    started = time.perf_counter()
    baseline = [adapter.generate([c], [imgs], settings)[0] for c, imgs in requests]
    seconds = time.perf_counter() - started
    rows.append({"config": "per-sample", "batch_size": 1, "seconds": round(seconds, 3),
                 "tokens_per_s": round(tokens / seconds, 2), "match": 1.0})
    print(f"  {family} per-sample: {tokens / seconds:.1f} tok/s ({seconds:.1f} s)", flush=True)
    for size in args.batches:
        started = time.perf_counter()
        answers = generate_all(adapter, requests, settings, batch_size=size)
        seconds = time.perf_counter() - started
        match = sum(a == b for a, b in zip(answers, baseline)) / len(baseline)
        rows.append({"config": f"engine b{size}", "batch_size": size, "seconds": round(seconds, 3),
                     "tokens_per_s": round(tokens / seconds, 2), "match": round(match, 3)})
        print(f"  {family} engine b{size}: {tokens / seconds:.1f} tok/s ({seconds:.1f} s), match {match:.2f}",
              flush=True)
    base = rows[0]["tokens_per_s"]
    for row in rows:
        row["speedup"] = round(row["tokens_per_s"] / base, 2)
    return {"family": family, "size": args.size, "prompts": len(requests), "new_tokens": args.new_tokens,
            "generated_tokens": tokens, "rows": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batches", default="1,8,16,32")
    parser.add_argument("--families", default="qwen2_vl,llava_next")
    parser.add_argument("--size", default="small", choices=("tiny", "small"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",") if b]

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []
    with tempfile.TemporaryDirectory(prefix="adamllm-bench-gen-") as tmp:
        for family in [f for f in args.families.split(",") if f]:
            print(f"{family} ({args.size}), {args.prompts} prompts x {args.new_tokens} new tokens", flush=True)
            results.append(bench_family(family, args, Path(tmp)))

    print()
    print(f"{'family':<11} {'config':<11} {'seconds':>8} {'tok/s':>8} {'speedup':>8} {'match':>6}")
    for result in results:
        for row in result["rows"]:
            print(f"{result['family']:<11} {row['config']:<11} {row['seconds']:>8.1f} {row['tokens_per_s']:>8.1f} "
                  f"{row['speedup']:>7.2f}x {row['match']:>6.2f}")
    report = {"benchmark": "generation", "threads": args.threads, "python": sys.version.split()[0],
              "torch": torch.__version__, "machine": platform.machine(), "goal": ">=5x at batch 16",
              "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
