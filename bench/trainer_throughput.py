"""Training throughput of our ``sft`` trainer against plain transformers, measured in one run.

What it measures
    The same ``small`` tiny Qwen2-VL (built offline, seed 0) is fully fine-tuned for one epoch in
    fp32 with batch 8 on the same deterministic mix of conversations (default 320 records; 2- and
    4-message conversations; one PNG each of 112-224 px, i.e. 16-36 image tokens; lengths as
    encoded by our adapter, image tokens included, spread from 76 to ~800 tokens, skewed towards
    short ones as real mixes are). Configurations:

    * ``hf_random``   transformers' ``Trainer``, pad-to-longest collator, random sampling;
    * ``hf_grouped``  the same with a precomputed ``length`` column and length-grouped sampling
                      (transformers 5 spells it ``train_sampling_strategy="group_by_length"``;
                      the old ``group_by_length=True`` argument is gone) - the best a plain
                      transformers user gets today;
    * ``ours_padded_random`` our trainer with ``packing=False, group_by_length=False``
                      (ablation: padded batches in random order);
    * ``ours_padded`` our trainer with ``packing=False`` (ablation: padded, length-grouped batches);
    * ``ours_full_head`` our trainer with ``head_on_labels_only=False`` (ablation: LM head and
                      loss over every position, as transformers does);
    * ``ours``        our trainer as shipped: each batch packed into one row without padding
                      (per-sample causal attention, positions restarting per sample), random
                      batch order, head on labelled positions only.

    The baselines' collator does what a plain user does every step: open the images and call
    ``processor.apply_chat_template(..., return_assistant_tokens_mask=True)`` on the batch (the
    processor is our adapter's image-only Qwen2-VL processor; input ids are checked to equal our
    adapter's encoding, so every configuration trains on exactly the same tokens).

How
    Each configuration runs in a fresh interpreter (``--worker NAME``), so peak memory
    (``ru_maxrss``) is its own. ``torch.set_num_threads`` is the same (2 by default) in every
    worker, and every worker runs with ``OMP_WAIT_POLICY=PASSIVE`` (see ``ENV`` for why). Model
    loading is excluded from every timing. Columns:

    * tok/s loop: non-padding tokens (from the attention masks of the batches actually fed,
      counted by wrapping the collate function) per second of the training loop, tokenisation
      excluded (HF: ``trainer.train()`` wall time minus time spent in the collator; ours: the
      summary's ``train_seconds``, whose loop only pads or packs already-encoded samples);
    * tok/s total: the same tokens per second including tokenisation (HF: the whole
      ``trainer.train()``, which tokenises every step; ours: ``train_seconds + encode_seconds``,
      the one-off encoding counted against us);
    * tok/CPU-s: the same tokens per CPU-second of the process (all threads) in the loop,
      tokenisation excluded. Wall time depends on what else runs on this shared machine (the
      same configuration took 146 s and 236 s in two runs); CPU time barely does (433 tok/CPU-s
      both times), so ratios of this column are the reliable ones when the load column differs;
    * padding: share of the fed batch tensors that is padding;
    * memory: RSS when training starts (model loaded), the peak by the end of the training loop,
      the peak of the whole worker (the goal's measure) and, for ours, the RSS that encoding every
      record up front added (token tensors and image references, kept for the whole run).

    Repeats are interleaved (the configuration order rotates each repeat) and medians are
    reported. One repeat takes about 9-11 minutes on the 2-core machine.

Usage: ``python bench/trainer_throughput.py [--samples 320] [--repeats 1] [--threads 2]``
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from adamllm.plugins.sft.batching import real_tokens

BATCH = 8
LR = 1e-4
SEED = 0
MIN_TOKENS, MAX_TOKENS = 76, 800
CONFIGS = ("hf_random", "hf_grouped", "ours_padded_random", "ours_padded", "ours_full_head", "ours")
LABELS = {
    "hf_random": "transformers Trainer, random sampling",
    "hf_grouped": "transformers Trainer, group_by_length",
    "ours_padded_random": "ours, padded, random order",
    "ours_padded": "ours, padded, group_by_length",
    "ours_full_head": "ours, head_on_labels_only=False",
    "ours": "ours (as shipped)",
}
# OMP_WAIT_POLICY=PASSIVE: OpenMP threads sleep instead of spinning at barriers. On this shared 2-core
# machine another job often holds one core; spinning threads then burn whole time slices at every
# parallel region, which made a batch of 8 x 100 tokens take 2-7.7 s instead of 0.9 s (measured) and
# punished the many small ops of short, grouped batches far more than long ones. Same for every worker.
ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "TRANSFORMERS_VERBOSITY": "error", "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}

WORDS = ("cell tissue lesion margin stain nucleus membrane sample biopsy section image shows the a of and "
         "with in on at by from near left right upper lower central region area pattern texture density "
         "contrast visible small large round oval irregular smooth dark bright pale red blue green layer "
         "structure fiber vessel wall surface edge border cluster group single multiple scattered dense "
         "sparse normal abnormal typical marked mild moderate severe finding suggests indicates consistent "
         "likely possible dish plate bowl sauce rice noodle soup bread cheese tomato onion garlic pepper "
         "grilled fried baked steamed served topped mixed sliced fresh dried sweet sour salty spicy").split()
QUESTIONS = ("What does this image show?", "Describe the main structure.", "Which finding is visible here?",
             "What is the likely diagnosis?", "Name the dish and its ingredients.", "Explain the pattern.")


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- the data mix (parent process) ------------------------------------------------------------
def _sentence(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(WORDS) for _ in range(max(1, n_words))]
    return " ".join(words).capitalize() + "."


def _conversation(rng: random.Random, n_messages: int, answer_words: list[int]) -> list[dict]:
    messages = []
    for turn in range(n_messages // 2):
        question = rng.choice(QUESTIONS) + " " + _sentence(rng, rng.randint(2, 10))
        messages.append({"role": "user", "content": ("<image>" if turn == 0 else "") + question})
        messages.append({"role": "assistant", "content": _sentence(rng, answer_words[turn])})
    return messages


def make_mix(adapter, root: Path, n: int, seed: int = SEED) -> tuple[list[dict], list[int]]:
    """Seeded records whose encoded lengths spread from MIN_TOKENS to about MAX_TOKENS."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    plans = []
    for i in range(n):
        w, h = rng.randint(112, 224), rng.randint(112, 224)
        image = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(4):
            x, y = rng.randrange(w), rng.randrange(h)
            draw.rectangle([x, y, x + rng.randint(5, 60), y + rng.randint(5, 60)],
                           fill=tuple(rng.randrange(256) for _ in range(3)))
        path = f"images/{i:04d}.png"
        image.save(root / path)
        # target length: the shortest records are the most common (a skewed, long-tailed mix)
        target = MIN_TOKENS if i == 0 else MAX_TOKENS if i == 1 else \
            round(MIN_TOKENS + (MAX_TOKENS - MIN_TOKENS) * rng.random() ** 1.6)
        plans.append({"path": path, "messages": 2 if rng.random() < 0.5 else 4, "target": target,
                      "seed": rng.randrange(2**31)})

    def build(plan, answer_words):
        messages = _conversation(random.Random(plan["seed"]), plan["messages"], answer_words)
        record = {"messages": messages, "images": [plan["path"]]}
        return record, int(adapter.encode(messages, [plan["path"]], image_root=root)["input_ids"].shape[0])

    records, lengths = [], []
    for plan in plans:
        turns = plan["messages"] // 2
        answer = [1] * turns
        record, length = build(plan, answer)
        rate = 1.3  # tokens per answer word, re-estimated from each correction (secant steps)
        for _ in range(6):
            missing = plan["target"] - length
            if abs(missing) <= 2:
                break
            new = [max(1, round(a + missing / rate / turns)) for a in answer]
            new_record, new_length = build(plan, new)
            if sum(new) != sum(answer) and new_length != length:
                rate = max(0.2, (new_length - length) / (sum(new) - sum(answer)))
            answer, record, length = new, new_record, new_length
        while length < MIN_TOKENS or length > MAX_TOKENS:  # then one word at a time into the range
            step = 1 if length < MIN_TOKENS else -1
            if step < 0 and answer[-1] == 1:
                break
            answer[-1] += step
            record, length = build(plan, answer)
        records.append(record)
        lengths.append(length)
    return records, lengths


def check_same_tokens(adapter, records: list[dict], root: Path, k: int = 6) -> None:
    """The baselines' collator must feed the same token ids as our adapter's encoding."""
    batch = _hf_collate(adapter.processor, records[:k], root)
    for i, record in enumerate(records[:k]):
        ours = adapter.encode(record["messages"], record["images"], image_root=root)["input_ids"]
        row = batch["input_ids"][i][batch["attention_mask"][i].bool()]
        if row.tolist() != ours.tolist():
            raise SystemExit(f"record {i}: the HF collator's tokens differ from the adapter's")


# -- the baselines' collator (what a plain transformers user writes) --------------------------
def _hf_collate(processor, rows, root: Path):
    from PIL import Image

    from adamllm.backbones.adapter import to_content_list

    conversations = []
    for row in rows:
        images = iter([Image.open(root / p).convert("RGB") for p in row["images"]])
        conversation = to_content_list(row["messages"])
        for message in conversation:
            for part in message["content"]:
                if part["type"] == "image":
                    part["image"] = next(images)
        conversations.append(conversation)
    batch = processor.apply_chat_template(conversations, tokenize=True, return_dict=True, return_tensors="pt",
                                          return_assistant_tokens_mask=True,
                                          processor_kwargs={"padding": True, "padding_side": "right"})
    batch = dict(batch)
    batch["labels"] = batch["input_ids"].masked_fill(batch.pop("assistant_masks") == 0, -100)
    return batch


class Counter:
    """Wraps a collate function: counts real and padded tokens of every batch, and its wall and CPU
    time (CPU time of the whole process, all threads)."""

    def __init__(self, fn):
        self.fn, self.real, self.padded, self.batches, self.seconds, self.cpu = fn, 0, 0, 0, 0.0, 0.0

    def __call__(self, *args, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        batch = self.fn(*args, **kwargs)
        self.seconds += time.perf_counter() - start
        self.cpu += time.process_time() - cpu
        self.real += real_tokens(batch)  # a packed batch has no attention mask: every token is real
        self.padded += batch["input_ids"].numel()
        self.batches += 1
        return batch


# -- workers (one fresh interpreter per configuration) ----------------------------------------
def worker(name: str, work: Path, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from adamllm.backbones.families import Qwen2VLAdapter

    records = json.loads((work / "records.json").read_text())
    lengths = json.loads((work / "lengths.json").read_text())
    root = work / "data"
    adapter = Qwen2VLAdapter.from_pretrained(work / "model")
    adapter.model  # load now: model loading is not timed
    adapter.processor
    load = os.getloadavg()[0]
    if name.startswith("hf_"):
        result = _run_hf(name, adapter, records, lengths, root, work / f"out-{name}")
    else:
        result = _run_ours(name, adapter, records, root, work / f"out-{name}")
    result.update(name=name, threads=torch.get_num_threads(), peak_rss_mib=rss_mib(),
                  load=(load + os.getloadavg()[0]) / 2)
    return result


def _run_hf(name, adapter, records, lengths, root, out) -> dict:
    import datasets
    from transformers import Trainer, TrainingArguments

    rows = [{"messages": r["messages"], "images": r["images"], "length": n} for r, n in zip(records, lengths)]
    dataset = datasets.Dataset.from_list(rows)
    if name == "hf_random":
        dataset = dataset.remove_columns("length")
    processor = adapter.processor
    processor.tokenizer.padding_side = "right"
    collator = Counter(lambda batch: _hf_collate(processor, batch, root))
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=BATCH, num_train_epochs=1, learning_rate=LR,
        lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=0.0, max_grad_norm=1.0, use_cpu=True,
        report_to="none", remove_unused_columns=False, save_strategy="no", logging_strategy="no",
        dataloader_num_workers=0, dataloader_pin_memory=False, disable_tqdm=True, seed=SEED,
        train_sampling_strategy="group_by_length" if name == "hf_grouped" else "random",
        length_column_name="length")
    trainer = Trainer(model=adapter.model, args=args, train_dataset=dataset, data_collator=collator)
    rss_start = current_rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    output = trainer.train()
    total, total_cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"steps": trainer.state.global_step, "samples": len(dataset), "real": collator.real,
            "padded": collator.padded, "loop_seconds": total - collator.seconds, "total_seconds": total,
            "loop_cpu": total_cpu - collator.cpu, "tokenise_seconds": collator.seconds,
            "rss_start_mib": rss_start, "loop_peak_mib": rss_mib(), "cache_mib": 0.0,
            "loss": output.training_loss, "sampler": args.train_sampling_strategy}


def _run_ours(name, adapter, records, root, out) -> dict:
    from adamllm.plugins.sft.config import SFTConfig
    from adamllm.plugins.sft.trainer import SFTTrainer

    stamps: dict[str, float] = {}

    class Probed(SFTTrainer):  # stamps the end of the training loop; changes nothing else
        def _write_outputs(self, *args, **kwargs):
            stamps.update(loop_end_cpu=time.process_time(), loop_peak_mib=rss_mib())
            return super()._write_outputs(*args, **kwargs)

    encode_all = adapter.encode_all

    def probed_encode_all(*args, **kwargs):  # what keeping every encoded sample in memory costs
        before = current_rss_mib()
        result = encode_all(*args, **kwargs)
        stamps.update(encode_end_cpu=time.process_time(), cache_mib=current_rss_mib() - before)
        return result

    adapter.encode_all = probed_encode_all
    padded = name.startswith("ours_padded")
    cfg = SFTConfig(mode="full", mixed_precision="no", batch_size=BATCH, num_epochs=1, learning_rate=LR,
                    packing=not padded, group_by_length=False if name == "ours_padded_random" else None,
                    head_on_labels_only=name != "ours_full_head")
    counter = Counter(adapter.collate_packed if cfg.packing else adapter.collate)
    if cfg.packing:  # instance attribute: the trainer's own collate, counted
        adapter.collate_packed = counter
    else:
        adapter.collate = counter
    rss_start = current_rss_mib()
    summary = Probed(cfg).train(adapter, records, out, image_root=root, seed=SEED)
    loop, encode = summary["train_seconds"], summary["encode_seconds"]
    return {"steps": summary["steps"], "samples": summary["samples"], "real": counter.real,
            "padded": counter.padded, "loop_seconds": loop, "total_seconds": loop + encode,
            "loop_cpu": stamps["loop_end_cpu"] - stamps["encode_end_cpu"], "tokenise_seconds": encode,
            "rss_start_mib": rss_start, "loop_peak_mib": stamps["loop_peak_mib"], "cache_mib": stamps["cache_mib"],
            "loss": summary["final_loss"], "summary_tok_s": summary["tokens_per_second"],
            "summary_padding": summary["padding_fraction"]}


# -- the parent: build, run every configuration, print the table ------------------------------
def run_worker(name: str, work: Path, threads: int) -> dict:
    env = {**os.environ, **ENV}
    proc = subprocess.run([sys.executable, __file__, "--worker", name, "--work", str(work), "--threads",
                           str(threads)], capture_output=True, text=True, env=env)
    (work / f"{name}.log").write_text(proc.stderr)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise SystemExit(f"worker {name} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")


def describe_lengths(lengths: list[int], records: list[dict]) -> None:
    from adamllm.plugins.sft.batching import epoch_batches, padding_fraction

    ordered = sorted(lengths)
    q = lambda p: ordered[min(len(ordered) - 1, int(p * len(ordered)))]  # noqa: E731
    turns = sum(len(r["messages"]) == 4 for r in records)
    print(f"mix: {len(lengths)} records ({len(lengths) - turns} with 2 messages, {turns} with 4), one image each; "
          f"{sum(lengths)} tokens")
    print(f"  tokens per record: min {ordered[0]}  p10 {q(0.1)}  median {statistics.median(ordered):.0f}  "
          f"mean {statistics.mean(ordered):.0f}  p90 {q(0.9)}  max {ordered[-1]}")
    rand = padding_fraction(lengths, epoch_batches(lengths, BATCH, seed=SEED, epoch=0, group_by_length=False))
    print(f"  padding of one shuffled epoch at batch {BATCH} (our sampler): {rand:.1%}")


def describe_labels(adapter, records: list[dict], root: Path) -> None:
    """The share of labelled positions bounds what computing the head only there can save."""
    labelled = image = total = pixels = 0
    for record in records:
        sample = adapter.encode(record["messages"], record["images"], image_root=root)
        labelled += int((sample["labels"][1:] != -100).sum())
        image += sample["num_image_tokens"]
        total += int(sample["input_ids"].shape[0])
        pixels += sample["pixel_values"].numel() * sample["pixel_values"].element_size()
    print(f"  labelled positions {labelled / total:.1%} of tokens, image tokens {image / total:.1%}; "
          f"pixel_values of all records: {pixels / 2**20:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=1, help="interleaved repeats; medians are reported")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every worker")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, Path(args.work), args.threads)), flush=True)
        return

    os.environ.update(ENV)
    configs = args.configs.split(",")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="adamllm-bench-") as tmp:
        work = Path(tmp)
        from adamllm.backbones.families import Qwen2VLAdapter
        from adamllm.backbones.tiny import build_tiny, count_parameters

        build_tiny("qwen2_vl", work / "model", size="small", seed=SEED)
        adapter = Qwen2VLAdapter.from_pretrained(work / "model")
        records, lengths = make_mix(adapter, work / "data", args.samples)
        check_same_tokens(adapter, records, work / "data")
        (work / "records.json").write_text(json.dumps(records))
        (work / "lengths.json").write_text(json.dumps(lengths))
        print(f"model: tiny 'small' Qwen2-VL, {count_parameters(adapter.model) / 1e6:.2f} M parameters, fp32, "
              f"full fine-tune; batch {BATCH}; one epoch; {args.threads} torch threads; setup "
              f"{time.time() - started:.0f} s")
        describe_lengths(lengths, records)
        describe_labels(adapter, records, work / "data")

        runs: dict[str, list[dict]] = {c: [] for c in configs}
        for repeat in range(args.repeats):
            order = configs[repeat % len(configs):] + configs[:repeat % len(configs)]
            for name in order:
                result = run_worker(name, work, args.threads)
                runs[name].append(result)
                print(f"  [repeat {repeat + 1}] {name:15s} {result['real'] / result['loop_seconds']:6.0f} tok/s loop  "
                      f"{result['real'] / result['total_seconds']:6.0f} tok/s total  "
                      f"{result['real'] / result['loop_cpu']:6.0f} tok/CPU-s  {result['total_seconds']:6.1f} s  "
                      f"peak {result['peak_rss_mib']:5.0f} MiB  load {result['load']:.1f}", flush=True)
    report(runs, args.repeats, args.threads)
    print(f"whole run: {time.time() - started:.0f} s")


def report(runs: dict[str, list[dict]], repeats: int, threads: int) -> None:
    med = lambda name, f: statistics.median(f(r) for r in runs[name])  # noqa: E731
    rows = {}
    for name, results in runs.items():
        first = results[0]
        rows[name] = {
            "loop": med(name, lambda r: r["real"] / r["loop_seconds"]),
            "total": med(name, lambda r: r["real"] / r["total_seconds"]),
            "cpu": med(name, lambda r: r["real"] / r["loop_cpu"]),
            "pad": 1 - first["real"] / first["padded"],
            "peak": med(name, lambda r: r["peak_rss_mib"]),
            "loop_peak": med(name, lambda r: r["loop_peak_mib"]),
            "start": med(name, lambda r: r["rss_start_mib"]),
            "cache": med(name, lambda r: r["cache_mib"]),
            "steps": first["steps"], "real": first["real"],
            "seconds": med(name, lambda r: r["total_seconds"]),
            "tok_seconds": med(name, lambda r: r["tokenise_seconds"]),
            "load": med(name, lambda r: r["load"]),
        }
    print()
    print(f"results, median of {repeats} interleaved repeat(s); tokens = non-padding tokens fed; "
          f"'loop' excludes tokenisation, 'total' includes it")
    header = (f"{'configuration':38s} {'tok/s loop':>10s} {'tok/s total':>11s} {'tok/CPU-s':>9s} {'padding':>8s} "
              f"{'peak RSS':>9s} {'steps':>5s} {'seconds':>7s} {'tokenise s':>10s} {'load':>5s}")
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        print(f"{LABELS[name]:38s} {row['loop']:10.0f} {row['total']:11.0f} {row['cpu']:9.0f} {row['pad']:8.1%} "
              f"{row['peak']:5.0f} MiB {row['steps']:5d} {row['seconds']:7.1f} {row['tok_seconds']:10.1f} "
              f"{row['load']:5.1f}")
    print()
    print("memory (MiB): RSS when training starts (model loaded), peak by the end of the training loop, peak of the "
          "whole worker; 'encoded cache' = RSS added by encoding every record up front (ours)")
    header = f"{'configuration':38s} {'at start':>9s} {'loop peak':>9s} {'loop - start':>12s} {'worker peak':>11s} {'encoded cache':>13s}"
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        print(f"{LABELS[name]:38s} {row['start']:9.0f} {row['loop_peak']:9.0f} {row['loop_peak'] - row['start']:12.0f} "
              f"{row['peak']:11.0f} {row['cache']:13.0f}")
    for name, results in runs.items():
        for r in results:
            if r["threads"] != threads:
                print(f"WARNING: {name} ended with {r['threads']} torch threads, not {threads}")
            if "summary_padding" in r and abs(r["summary_padding"] - (1 - r["real"] / r["padded"])) > 1e-3:
                print(f"WARNING: {name}: the trainer's padding_fraction {r['summary_padding']} differs from the "
                      f"counted {1 - r['real'] / r['padded']:.4f}")
            if "summary_tok_s" in r and abs(r["summary_tok_s"] / (r["real"] / r["loop_seconds"]) - 1) > 0.01:
                print(f"WARNING: {name}: the trainer's tokens_per_second {r['summary_tok_s']} differs from the "
                      f"counted {r['real'] / r['loop_seconds']:.1f}")
    if len({row["real"] for row in rows.values()}) > 1:
        print("WARNING: configurations fed different numbers of real tokens:",
              {n: r["real"] for n, r in rows.items()})

    baselines = [n for n in ("hf_random", "hf_grouped") if n in rows]
    print()
    if "hf_grouped" in rows and "hf_random" in rows:
        g, r = rows["hf_grouped"], rows["hf_random"]
        print(f"HF group_by_length vs HF random: {g['total'] / r['total']:.2f}x tok/s total, "
              f"{g['cpu'] / r['cpu']:.2f}x tok/CPU-s; padding {r['pad']:.1%} -> {g['pad']:.1%}")
    if "ours" not in rows or not baselines:
        return
    ours = rows["ours"]
    best = max(baselines, key=lambda n: rows[n]["total"])
    for metric, what in (("total", "tok/s incl. tokenisation"), ("loop", "tok/s loop only"),
                         ("cpu", "tok per CPU-second, loop")):
        print(f"ours vs best baseline ({LABELS[best]}), {what}: {ours[metric] / rows[best][metric]:.2f}x")
    print("what each change bought (ratio of the configuration with it to the one without it):")
    for with_, without, change in (("ours", "ours_padded", "packing (vs padded + grouped)"),
                                   ("ours_padded", "ours_padded_random", "length grouping (padded)"),
                                   ("ours", "ours_full_head", "head + loss on labelled rows only"),
                                   ("ours_padded_random", "hf_random", "tokenise once + head on labels")):
        if with_ in rows and without in rows:
            a, b = rows[with_], rows[without]
            print(f"  {change:34s} {a['total'] / b['total']:.2f}x tok/s total, {a['cpu'] / b['cpu']:.2f}x "
                  f"tok/CPU-s, padding {b['pad']:.1%} -> {a['pad']:.1%}, loop peak "
                  f"{a['loop_peak'] - b['loop_peak']:+.0f} MiB ({with_} vs {without})")
    lowest_peak = min(rows[n]["peak"] for n in baselines)
    ratio = ours["total"] / rows[best]["total"]
    print()
    print("goals:")
    print(f"  non-padding tok/s >= 1.2x best baseline (incl. tokenisation): {ratio:.2f}x  "
          f"{'MET' if ratio >= 1.2 else 'NOT MET'} (per CPU-second: {ours['cpu'] / rows[best]['cpu']:.2f}x)")
    print(f"  padding < 5%: {ours['pad']:.1%}  {'MET' if ours['pad'] < 0.05 else 'NOT MET'}")
    print(f"  peak memory no higher than the lowest baseline's ({lowest_peak:.0f} MiB): {ours['peak']:.0f} MiB  "
          f"{'MET' if ours['peak'] <= lowest_peak else 'NOT MET'}")


if __name__ == "__main__":
    main()
