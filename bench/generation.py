"""Generation throughput of ``adamllm.generation.generate_all`` against per-sample generation, in one run.

What it measures
    For each family (default the ``small`` tiny Qwen2-VL and LLaVA-NeXT, built offline, seed 0,
    fp32 on CPU) the same deterministic prompts (default 128 single-turn questions of 2-40 words,
    each with one PNG-like RGB image of 56-168 px) are answered greedily with exactly
    ``--new-tokens`` new tokens each (``min_new_tokens = max_new_tokens``, so every configuration
    generates the same number of tokens):

    * ``per-sample``  ``adapter.generate([conversation], [images])`` once per prompt (the baseline:
                      what a caller without batching does);
    * ``engine bN``   ``generate_all(adapter, requests, settings, batch_size=N)``: length-sorted,
                      left-padded batches of N through ``adapter.generate``.

    tok/s = generated tokens (prompts x new tokens) / wall seconds of the whole call, encoding
    included; model loading excluded; the best of ``--repeats`` runs (default 2) of each
    configuration. Each engine row also gives the prompt tokens its batches hold with padding,
    sorted by encoded length as the engine does (``padded_tokens``) and by text length
    (``padded_tokens_text_sort``), against the prompts' own (``prompt_tokens``). ``prefill``:
    the same calls with one new token (encoding and prefill alone), per sample and at batch 16,
    its share of the batch-16 time, and the speed-up of the decoding steps alone. ``match`` is the share of answers equal to the per-sample
    answer (greedy decoding: batching should not change them, up to float ties). ``torch`` threads
    are set once (``--threads``, default 2). The machine may be shared: compare ratios within a run.

Evaluate section (``--only evaluate``): see ``bench/evaluation_section.py``.

Filter section (``--only filter`` runs it alone)
    Triplets/s of the ``consistency`` filter (built-in few-shot prompt, greedy, 2 new tokens,
    default parsing) with the ``small`` tiny text-only ``causal_lm`` judge on ``--filter-triplets``
    deterministic triplets (default 64, instructions of 3-15 words, informative answers of 10-60):

    * ``per-sample``      ``adapter.generate_from_text([prompt])`` once per triplet (the baseline);
    * ``engine bN``       ``ConsistencyFilter.judge`` on stage batches of N (``--filter-batch``,
                          default 16) with ``engine: engine`` (``generate_all``);
    * ``generate_batch``  the same with ``engine: generate_batch`` (transformers' continuous
                          batching, ``model.generate_batch``).

    Prompt building, generation and parsing are timed; loading is not. ``match``: share of raw
    outputs equal to the per-sample ones. With ``--only filter`` the JSON's ``filter`` entry is
    replaced and the generation results already in the file are kept.

Usage: ``python bench/generation.py [--prompts 128] [--repeats 2] [--new-tokens 32] [--batches 1,8,16,32]
[--families qwen2_vl,llava_next] [--size small] [--threads 2] [--only generation|filter|evaluate]
[--filter-triplets 64] [--filter-batch 16] [--out bench/results/generation.json]``
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


def padding(keys: list, size: int) -> dict:
    """Prompt tokens the batches of ``size`` hold, padding included, as the engine sorts them (by
    encoded length) and as a text-length sort would (the engine's fallback), against the prompts'
    own tokens: what the sort saves in the prefill. ``keys``: ``adamllm.generation.sort_keys``
    of the requests, ``(encoded length, text length, images)``."""
    lengths = [key[0] for key in keys]

    def padded(order):
        return sum(max(lengths[i] for i in order[s:s + size]) * len(order[s:s + size])
                   for s in range(0, len(order), size))

    by_tokens = sorted(range(len(keys)), key=keys.__getitem__, reverse=True)
    by_text = sorted(range(len(keys)), key=lambda i: keys[i][1:], reverse=True)
    return {"prompt_tokens": sum(lengths), "padded_tokens": padded(by_tokens), "padded_tokens_text_sort": padded(by_text)}


def bench_family(family: str, args, work: Path) -> dict:
    from adamllm.backbone import GenerationSettings
    from adamllm.generation import generate_all, sort_keys

    adapter = build_adapter(family, args.size, work)
    requests = make_requests(args.prompts)
    settings = GenerationSettings(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    tokens = len(requests) * args.new_tokens
    keys = sort_keys(adapter, requests)
    adapter.generate([requests[0][0]], [requests[0][1]], settings)  # warm-up, not timed

    def timed(call):
        """The answers and the best wall time of ``--repeats`` runs (the fastest is the least
        disturbed by whatever else the machine does; every configuration gets the same repeats)."""
        best, answers = float("inf"), None
        for _ in range(args.repeats):
            started = time.perf_counter()
            answers = call()
            best = min(best, time.perf_counter() - started)
        return answers, best

    rows = []
    baseline, seconds = timed(lambda: [adapter.generate([c], [imgs], settings)[0] for c, imgs in requests])
    rows.append({"config": "per-sample", "batch_size": 1, "seconds": round(seconds, 3),
                 "tokens_per_s": round(tokens / seconds, 2), "match": 1.0})
    print(f"  {family} per-sample: {tokens / seconds:.1f} tok/s ({seconds:.1f} s)", flush=True)
    for size in args.batches:
        answers, seconds = timed(lambda: generate_all(adapter, requests, settings, batch_size=size))
        match = sum(a == b for a, b in zip(answers, baseline)) / len(baseline)
        rows.append({"config": f"engine b{size}", "batch_size": size, "seconds": round(seconds, 3),
                     "tokens_per_s": round(tokens / seconds, 2), "match": round(match, 3),
                     **padding(keys, size)})
        print(f"  {family} engine b{size}: {tokens / seconds:.1f} tok/s ({seconds:.1f} s), match {match:.2f}",
              flush=True)
    base = rows[0]["tokens_per_s"]
    for row in rows:
        row["speedup"] = round(row["tokens_per_s"] / base, 2)
    # where the time goes: encoding + prefill alone (one new token), per sample and at batch 16
    one = GenerationSettings(max_new_tokens=1, min_new_tokens=1)
    _, alone = timed(lambda: [adapter.generate([c], [imgs], one)[0] for c, imgs in requests])
    _, batched = timed(lambda: generate_all(adapter, requests, one, batch_size=16))
    full = {row["config"]: row["seconds"] for row in rows}
    prefill = {"per_sample_seconds": round(alone, 3), "engine_b16_seconds": round(batched, 3),
               "speedup": round(alone / batched, 2)}
    if "engine b16" in full:
        prefill["share_of_engine_b16"] = round(batched / full["engine b16"], 3)
        prefill["decode_speedup_b16"] = round((full["per-sample"] - alone) / (full["engine b16"] - batched), 2)
    print(f"  {family} prefill only: per-sample {alone:.1f} s, engine b16 {batched:.1f} s", flush=True)
    return {"family": family, "size": args.size, "prompts": len(requests), "new_tokens": args.new_tokens,
            "repeats": args.repeats,
            "generated_tokens": tokens, "rows": rows, "prefill": prefill}


# -- filter section ---------------------------------------------------------------------------
def make_triplets(n: int, seed: int = 0) -> list:
    from adamllm.records import TaskTriplet

    rng = random.Random(seed)

    def text(low: int, high: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))

    return [TaskTriplet(id=f"t{i}", image=f"img{i}.png", instruction=text(3, 15).capitalize() + "?",
                        precise=text(1, 4), informative=text(10, 60).capitalize() + ".") for i in range(n)]


class _JudgeContext:
    """What ``ConsistencyFilter.judge`` needs of a stage context: the judge model, built once."""

    def __init__(self, adapter) -> None:
        self.adapter = adapter

    def build_model(self, slot, model=None):
        return self.adapter


def bench_filter(args, work: Path) -> dict:
    from adamllm.backbone import BackboneConfig, GenerationSettings
    from adamllm.backbones.causal_lm import CausalLMAdapter
    from adamllm.backbones.tiny import build_tiny
    from adamllm.plugins.filtering.consistency import ConsistencyConfig, ConsistencyFilter

    model_dir = build_tiny("causal_lm", work / f"causal_lm-{args.size}", size=args.size)
    adapter = CausalLMAdapter(BackboneConfig(model=str(model_dir)))
    adapter.model  # load now, outside every timing
    triplets = make_triplets(args.filter_triplets)
    context = _JudgeContext(adapter)

    def judge(engine: str):
        options = {"model": {"type": "causal_lm"}, "engine": engine, "batch_size": args.filter_batch}
        consistency = ConsistencyFilter(ConsistencyConfig.model_validate(options))
        return [v for start in range(0, len(triplets), args.filter_batch)  # the stage's batches
                for v in consistency.judge(triplets[start:start + args.filter_batch], context)]

    settings = GenerationSettings(max_new_tokens=2, do_sample=False)
    prompter = ConsistencyFilter(ConsistencyConfig.model_validate({"model": {"type": "causal_lm"}}))
    lengths = [len(adapter.tokenizer(prompter.prompt(t, adapter))["input_ids"]) for t in triplets]
    adapter.generate_from_text([prompter.prompt(triplets[0], adapter)], None, settings)  # warm-up, not timed

    rows = []
    started = time.perf_counter()
    baseline = [adapter.generate_from_text([prompter.prompt(t, adapter)], None, settings)[0] for t in triplets]
    seconds = time.perf_counter() - started
    rows.append({"config": "per-sample", "batch_size": 1, "seconds": round(seconds, 3),
                 "triplets_per_s": round(len(triplets) / seconds, 2), "match": 1.0})
    print(f"  filter per-sample: {len(triplets) / seconds:.1f} triplets/s ({seconds:.1f} s)", flush=True)
    for engine, label in (("engine", f"engine b{args.filter_batch}"),
                          ("generate_batch", f"generate_batch b{args.filter_batch}")):
        started = time.perf_counter()
        try:
            verdicts = judge(engine)
        except Exception as exc:  # noqa: BLE001 - report what happened instead of a number
            rows.append({"config": label, "batch_size": args.filter_batch, "error": f"{type(exc).__name__}: {exc}"})
            print(f"  filter {label}: failed: {exc}", flush=True)
            continue
        seconds = time.perf_counter() - started
        match = sum(v.raw == b for v, b in zip(verdicts, baseline)) / len(baseline)
        rows.append({"config": label, "batch_size": args.filter_batch, "seconds": round(seconds, 3),
                     "triplets_per_s": round(len(triplets) / seconds, 2), "match": round(match, 3)})
        print(f"  filter {label}: {len(triplets) / seconds:.1f} triplets/s ({seconds:.1f} s), match {match:.2f}",
              flush=True)
    base = rows[0]["triplets_per_s"]
    for row in rows:
        if "triplets_per_s" in row:
            row["speedup"] = round(row["triplets_per_s"] / base, 2)
    return {"family": "causal_lm", "size": args.size, "triplets": len(triplets), "new_tokens": 2,
            "prompt_tokens": {"min": min(lengths), "mean": round(sum(lengths) / len(lengths), 1), "max": max(lengths)},
            "rows": rows}


def print_filter(result: dict) -> None:
    print(f"\nconsistency filter, {result['family']} ({result['size']}), {result['triplets']} triplets, "
          f"prompts of {result['prompt_tokens']['min']}-{result['prompt_tokens']['max']} tokens")
    print(f"{'config':<20} {'seconds':>8} {'trip/s':>8} {'speedup':>8} {'match':>6}")
    for row in result["rows"]:
        if "error" in row:
            print(f"{row['config']:<20} failed: {row['error']}")
            continue
        print(f"{row['config']:<20} {row['seconds']:>8.1f} {row['triplets_per_s']:>8.1f} "
              f"{row['speedup']:>7.2f}x {row['match']:>6.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="best wall time of this many runs per configuration")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batches", default="1,8,16,32")
    parser.add_argument("--families", default="qwen2_vl,llava_next")
    parser.add_argument("--size", default="small", choices=("tiny", "small"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=("generation", "filter", "evaluate"), default=None,
                        help="run one section (default: all)")
    parser.add_argument("--eval-samples", type=int, default=96)
    parser.add_argument("--eval-new-tokens", type=int, default=16)
    parser.add_argument("--eval-batch", type=int, default=8)
    parser.add_argument("--filter-triplets", type=int, default=64)
    parser.add_argument("--filter-batch", type=int, default=16)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",") if b]

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results, filter_result, evaluate_result = [], None, None
    with tempfile.TemporaryDirectory(prefix="adamllm-bench-gen-") as tmp:
        if args.only in (None, "generation"):
            for family in [f for f in args.families.split(",") if f]:
                print(f"{family} ({args.size}), {args.prompts} prompts x {args.new_tokens} new tokens", flush=True)
                results.append(bench_family(family, args, Path(tmp)))
        if args.only in (None, "filter"):
            print(f"consistency filter ({args.size} causal_lm), {args.filter_triplets} triplets", flush=True)
            filter_result = bench_filter(args, Path(tmp))
        if args.only in (None, "evaluate"):
            from evaluation_section import bench_evaluate

            print(f"evaluate stage, {args.eval_samples} samples", flush=True)
            evaluate_result = bench_evaluate(args, Path(tmp), build_adapter)

    if results:
        print()
        print(f"{'family':<11} {'config':<11} {'seconds':>8} {'tok/s':>8} {'speedup':>8} {'match':>6}")
    for result in results:
        for row in result["rows"]:
            print(f"{result['family']:<11} {row['config']:<11} {row['seconds']:>8.1f} {row['tokens_per_s']:>8.1f} "
                  f"{row['speedup']:>7.2f}x {row['match']:>6.2f}")
    for result in results:
        pre = result["prefill"]
        if "share_of_engine_b16" in pre:
            print(f"{result['family']}: encoding + prefill is {pre['share_of_engine_b16']:.0%} of engine b16's time and "
                  f"{pre['speedup']:.2f}x faster batched; the decoding steps are {pre['decode_speedup_b16']:.2f}x faster")
    if filter_result is not None:
        print_filter(filter_result)
    if evaluate_result is not None:
        from evaluation_section import print_evaluate

        print_evaluate(evaluate_result)
    report = {"benchmark": "generation", "threads": args.threads, "python": sys.version.split()[0],
              "torch": torch.__version__, "machine": platform.machine(), "goal": ">=5x at batch 16",
              "results": results}
    previous = {}
    if args.only is not None and args.out.exists():  # one section: keep the others' numbers
        try:
            previous = json.loads(args.out.read_text(encoding="utf-8"))
        except ValueError:
            previous = {}
    if args.only not in (None, "generation"):
        report["results"] = previous.get("results", [])
    for key, result in (("filter", filter_result), ("evaluate", evaluate_result)):
        if result is not None:
            report[key] = {**result, "threads": args.threads}
        elif key in previous:
            report[key] = previous[key]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
