"""The evaluate section of ``bench/generation.py``: the evaluate stage's throughput before and after
it moved onto the generation engine, on the same benchmark and model, in one run.

* ``per-sample``  one ``adapter.generate`` call per sample (no batching at all);
* ``before``      what ``adamllm.evaluation`` did before the engine: batches of ``--eval-batch``
                  samples in sample order straight into ``adapter.generate``;
* ``after``       ``adamllm.evaluation.evaluate`` itself (batches through ``generate_all``: sorted
                  by length within the batch, out-of-memory back-off, per-sample isolation),
                  predictions written and scored.

The benchmark: ``--eval-samples`` SLAKE-layout questions (open and closed, 2-40 words) with one
image each, written to a temporary folder, answered greedily with at most ``--eval-new-tokens``
tokens. samples/s = samples / wall seconds of the whole call; ``match`` = share of answers equal to
``per-sample``'s.
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

WORDS = "what organ is shown is there a lesion in the left right lung liver kidney image scan".split()


def write_benchmark(folder: Path, n: int, seed: int = 0) -> Path:
    from PIL import Image

    rng = random.Random(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        Image.new("RGB", (rng.choice((56, 112)), rng.choice((56, 112))),
                  tuple(rng.randrange(256) for _ in range(3))).save(folder / "images" / f"{i}.png")
        closed = i % 2 == 1
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 40)))
        rows.append({"id": str(i), "image": f"images/{i}.png", "input": words.capitalize() + "?",
                     "label": "yes" if closed else "lung", "answer_type": "CLOSED" if closed else "OPEN"})
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def bench_evaluate(args, work: Path, build_adapter) -> dict:
    from adamllm.backbone import GenerationSettings
    from adamllm.evaluation import build_task, evaluate, evaluation_conversation, evaluation_settings
    from adamllm.images import open_image
    from adamllm.registry import PluginManager

    family = args.families.split(",")[0]
    adapter = build_adapter(family, args.size, work)
    folder = write_benchmark(work / "eval-bench", args.eval_samples)
    task = build_task(PluginManager(), "vqa", {"source": str(folder), "max_new_tokens": args.eval_new_tokens})
    samples = list(task.benchmark.samples())
    prompting = evaluation_settings(adapter)  # what evaluate() asks with (system message, image budget)
    conversations = [evaluation_conversation(s, prompting.get("system_message")) for s in samples]
    images = [[open_image(s.image)] for s in samples]
    settings = GenerationSettings(max_new_tokens=args.eval_new_tokens)
    adapter.generate(conversations[:1], images[:1], settings)  # warm-up, not timed
    size = args.eval_batch

    rows = []
    started = time.perf_counter()
    baseline = [adapter.generate([c], [i], settings)[0] for c, i in zip(conversations, images)]
    rows.append(("per-sample", time.perf_counter() - started, baseline))
    started = time.perf_counter()
    before = []
    for start in range(0, len(samples), size):
        before += adapter.generate(conversations[start:start + size], images[start:start + size], settings)
    rows.append((f"before b{size}", time.perf_counter() - started, before))
    started = time.perf_counter()
    evaluate(adapter, [task], work / "eval-out", batch_size=size, model_name="bench", progress=False)
    seconds = time.perf_counter() - started
    after = [json.loads(line)["prediction"] for line in
             (work / "eval-out" / task.name / "predictions.jsonl").read_text().splitlines()]
    rows.append((f"after b{size}", seconds, after))
    base = len(samples) / rows[0][1]
    return {"family": family, "size": args.size, "samples": len(samples), "max_new_tokens": args.eval_new_tokens,
            "rows": [{"config": name, "seconds": round(s, 3), "samples_per_s": round(len(samples) / s, 2),
                      "speedup": round(len(samples) / s / base, 2),
                      "match": round(sum(a == b for a, b in zip(answers, baseline)) / len(baseline), 3)}
                     for name, s, answers in rows]}


def print_evaluate(result: dict) -> None:
    print(f"\nevaluate stage ({result['family']} {result['size']}, {result['samples']} samples, "
          f"<= {result['max_new_tokens']} new tokens)")
    print(f"{'config':<12} {'seconds':>8} {'samples/s':>10} {'speedup':>8} {'match':>6}")
    for row in result["rows"]:
        print(f"{row['config']:<12} {row['seconds']:>8.1f} {row['samples_per_s']:>10.2f} {row['speedup']:>7.2f}x "
              f"{row['match']:>6.2f}")
