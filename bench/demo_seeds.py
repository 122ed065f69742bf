"""Is the demo's result robust, or one lucky seed? Runs ``adamllm demo`` (ablation rows included)
at several seeds and prints, per row, the mean score and its min-max over the seeds under both
scorers, the synthesizers' fact accuracy, and the paper's comparisons as differences per seed:

* adamllm vs the general model, caption-only and the text-only chance level (the method's claim);
* adamllm vs rules (the paper: synthesized tasks beat manual rules);
* single-stage vs two-stage (the paper: single-stage wins);
* filter vs no filter (the paper: filtering helps).

Each seed is an ordinary demo folder (``OUT/seed-N``), so a rerun resumes and reuses finished rows.
A row that did not finish on a seed is said so and left out of that seed's differences.

    python bench/demo_seeds.py --out runs/demo-seeds [--seeds 0 1 2] [--fast] [--no-ablation]

Writes ``OUT/seeds.json`` and ``OUT/seeds.md`` (the tables printed). Minutes per seed: see
docs/shapes.md.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

#: (name, row, against): each a difference of means, ``row`` minus ``against``.
COMPARISONS = (("adamllm - general", "adamllm", "general"),
               ("adamllm - caption-only", "adamllm", "caption-only"),
               ("adamllm - text-only (chance)", "adamllm", "chance"),
               ("adamllm - rules (paper: > 0)", "adamllm", "rules"),
               ("single-stage - two-stage (paper: > 0)", "adamllm", "two-stage"),
               ("filter - no filter (paper: > 0)", "adamllm", "no-filter"))


def spread(values: list[float]) -> str:
    if not values:
        return "–"
    mean = sum(values) / len(values)
    return f"{mean:.1f} ({min(values):.1f} – {max(values):.1f})"


def means(report: dict, scorer: str) -> dict[str, float]:
    from adamllm.domains.toyshapes.demo import headline

    found = {name: round(headline(row, scorer), 1) for name, row in report["rows"].items()}
    found["chance"] = round(headline(report["chance"], scorer), 1)
    return found


def tables(reports: dict[int, dict]) -> list[str]:
    from adamllm.domains.toyshapes.demo import SCORERS

    seeds = sorted(reports)
    rows = list(dict.fromkeys(name for r in reports.values() for name in [*r["rows"], *r.get("failed", {})]))
    head = "| row | " + " | ".join(f"seed {s}" for s in seeds) + " | mean (min – max) |"
    lines = []
    for scorer in SCORERS:
        by_seed = {s: means(reports[s], scorer) for s in seeds}
        lines += ["", f"mean score (x100), scorer {scorer}", head, "|---|" + "---:|" * (len(seeds) + 1)]
        for name in [*rows, "chance"]:
            values = [by_seed[s][name] for s in seeds if name in by_seed[s]]
            cells = [f"{by_seed[s][name]:.1f}" if name in by_seed[s] else "did not finish" for s in seeds]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {spread(values)} |")
        lines += ["", f"differences of means, scorer {scorer}", head.replace("| row |", "| comparison |"),
                  "|---|" + "---:|" * (len(seeds) + 1)]
        for label, row, against in COMPARISONS:
            diffs = {s: round(by_seed[s][row] - by_seed[s][against], 1) for s in seeds
                     if row in by_seed[s] and against in by_seed[s]}
            if diffs:
                cells = [f"{diffs[s]:+.1f}" if s in diffs else "–" for s in seeds]
                above = sum(d > 0 for d in diffs.values())
                lines.append(f"| {label} | " + " | ".join(cells) + f" | {spread(list(diffs.values()))}; > 0 on "
                             f"{above} of {len(seeds)} seeds |")
    lines += ["", "synthesized tasks true of their image (%), all / kept by the filter",
              "| synthesizer row | " + " | ".join(f"seed {s}" for s in seeds) + " | mean (min – max) |",
              "|---|" + "---:|" * (len(seeds) + 1)]
    for name in ("adamllm", "rules"):
        audits = {s: reports[s].get("synthesizers", {}).get(name) for s in seeds}
        if not any(audits.values()):
            continue
        cells = [f"{a['synthesized']['fact_accuracy']:.1f} / {a['kept']['fact_accuracy']:.1f}" if a and a.get("kept")
                 else (f"{a['synthesized']['fact_accuracy']:.1f}" if a else "–") for a in audits.values()]
        values = [a["synthesized"]["fact_accuracy"] for a in audits.values() if a]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {spread(values)} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/demo-seeds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--backbone", default="qwen2_vl")
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--no-ablation", action="store_true")
    args = parser.parse_args()

    from dataclasses import replace

    from adamllm.domains.toyshapes.demo import DemoSettings, run_demo

    out = Path(args.out)
    reports = {}
    for seed in args.seeds:
        print(f"[seeds] seed {seed}: {out / f'seed-{seed}'}", flush=True)
        settings = replace(DemoSettings.for_run(args.backbone, args.fast), seed=seed)
        reports[seed] = run_demo(out / f"seed-{seed}", settings, ablation=not args.no_ablation,
                                 echo=lambda line: None)
        print(f"[seeds] seed {seed} done in {reports[seed]['seconds']:.0f} s", flush=True)
    lines = [f"adamllm demo at seeds {', '.join(map(str, args.seeds))} ({args.backbone}, "
             f"{'fast' if args.fast else 'default'}{'' if args.no_ablation else ', ablation rows'})", *tables(reports)]
    print("\n".join(lines))
    (out / "seeds.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "seeds.json").write_text(json.dumps({str(s): r for s, r in reports.items()}, indent=2) + "\n",
                                    encoding="utf-8")


if __name__ == "__main__":
    main()
