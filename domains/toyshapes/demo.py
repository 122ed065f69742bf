"""``adamllm demo``: the whole method, offline, on the toy ``toyshapes`` world, as plain run configs.

The recipe, in order (each step is an ordinary ``adamllm run`` of a config written into the demo
folder, so any row can be read, changed and rerun by hand, and a rerun reuses finished stages; the
configs name every path relative to the demo folder, so a copy of the folder runs where it is):

1. ``world/``: the toy world (general seed data, domain image-caption pairs, held-out benchmark);
2. ``general/``: the starting "general MLLM", a tiny model trained on the general seed tasks;
3. one run per row, each post-training the general model on the domain and evaluating it:

   * ``general``       the general model itself, evaluated (no post-training);
   * ``caption-only``  trained on the domain captions alone;
   * ``adamllm``       the method: tune a synthesizer from the general model on the seed data,
                       synthesize a task per domain image, filter, compose caption + task turns in
                       one stage, train, evaluate;
   * with ``ablation``: ``rules`` (manual-rule tasks instead of the synthesizer), ``two-stage``
     (captions, then tasks) and ``no-filter`` (every synthesized task kept); the last two read the
     ``adamllm`` row's synthesized triplets (``data.filter`` / ``data.compose``), so the three rows
     differ only in what the ablation changes.

   A row that cannot finish (say, a synthesizer that wrote no parsable triplet, so the filter has
   nothing to keep) is reported as such, with its one-line reason, and the demo goes on.

4. ``report.md`` / ``report.json`` / ``report.png``: every row on every benchmark under both
   scorers (``legacy`` and ``strict``), and the table printed at the end; then the synthesizers'
   audit (``audit``: the share of each row's synthesized tasks whose precise answer is true of its
   image, per question family, and how diverse they are), who wins by how much and the ``adamllm
   inspect`` command that shows the data; the report records the versions it ran with and the stage
   time the rows took to compute (``demo_report``).

The filter is ``lexical`` (the precise answer's words must appear in the informative one): the
paper's judge is an 8B LLM, and a tiny random text model cannot judge anything.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from adamllm.layout import PREDICTIONS, REPORT

from .demo_report import (audit_lines, closing_lines, result_sentences, stage_times, synthesizer_audits,
                          timing_line, versions, versions_line)

ROWS = ("general", "caption-only", "adamllm")
ABLATION_ROWS = ("rules", "two-stage", "no-filter")
#: The rows that synthesize tasks themselves (the ablation rows ``two-stage`` and ``no-filter``
#: read the ``adamllm`` row's triplets): their tasks are audited against the world's facts.
SYNTHESIZER_ROWS = ("adamllm", "rules")
REUSE_METHOD_TASKS = ("two-stage", "no-filter")
#: Where the ablation rows read the method row's synthesized tasks (relative to the demo folder).
METHOD_TRIPLETS = "rows/adamllm/synthesize/triplets.jsonl"
SCORERS = ("legacy", "strict")
#: The toy benchmarks and their files in ``world/benchmark/``.
FILES = {"toyshapes_vqa": "vqa.jsonl", "toyshapes_choice": "choice.jsonl"}
#: The reference row of the table: no model, the majority answer per question type.
CHANCE = "text-only (chance)"


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and training settings of a demo run (``fast``: the CI-sized one). The defaults are
    the recipe measured on the toy world (docs/shapes.md): a small constant learning rate, as for
    the general model, since larger ones send a tiny model back to answering without the image."""

    backbone: str = "qwen2_vl"
    fast: bool = False
    seed: int = 0
    #: post-training of the general model on the domain mix (every row the same)
    learning_rate: float = 3.0e-4
    num_epochs: float = 10.0
    batch_size: int = 16
    #: tuning the synthesizer (from the general model) on the general seed data
    tune_learning_rate: float = 3.0e-4
    tune_epochs: float = 4.0
    tune_batch_size: int = 8
    synth_max_new_tokens: int = 160

    @classmethod
    def for_run(cls, backbone: str, fast: bool) -> "DemoSettings":
        return cls(backbone=backbone, fast=fast)


def _trainer(settings: DemoSettings, **more) -> dict:
    return {"type": "sft", "learning_rate": settings.learning_rate, "lr_scheduler": "constant",
            "num_epochs": settings.num_epochs, "batch_size": settings.batch_size, "warmup_ratio": 0.03,
            "log_every": 10, **more}


def row_configs(settings: DemoSettings, general_model: Path, rows: tuple[str, ...]) -> dict[str, dict]:
    """The run config of each row (paths relative to the demo folder, where the configs are written:
    ``general_model`` too should be given relative to it)."""
    from adamllm.domains.toyshapes.general_model import backbone_section

    backbone = backbone_section(settings.backbone, general_model)  # the toy world's image budget
    common = {"seed": settings.seed, "domain": {"type": "toyshapes"}, "backbone": backbone}
    synthesizer = {"type": "adamllm", "max_new_tokens": settings.synth_max_new_tokens, "batch_size": 16,
                   "model": dict(backbone),
                   "tuning": {"learning_rate": settings.tune_learning_rate, "num_epochs": settings.tune_epochs,
                              "batch_size": settings.tune_batch_size}}
    pipeline = ["tune", "synthesize", "filter", "compose", "train", "evaluate"]
    after_synthesis = pipeline[2:]
    reuse = {"filter": METHOD_TRIPLETS, "compose": METHOD_TRIPLETS}  # the method row's tasks, as they are
    configs = {
        "general": {**common, "stages": ["evaluate"]},
        "caption-only": {**common, "stages": ["synthesize", "filter", "compose", "train", "evaluate"],
                         "synthesizer": {"type": "rules"}, "filter": {"type": "none"},
                         "composer": {"type": "adamllm", "synthetic_task": False}, "trainer": _trainer(settings)},
        "adamllm": {**common, "stages": pipeline, "data": {"tune": "world/general"}, "synthesizer": synthesizer,
                    "filter": {"type": "lexical"}, "composer": {"type": "adamllm"}, "trainer": _trainer(settings)},
        "rules": {**common, "stages": ["synthesize", "filter", "compose", "train", "evaluate"],
                  "synthesizer": {"type": "rules"}, "filter": {"type": "lexical"}, "composer": {"type": "adamllm"},
                  "trainer": _trainer(settings)},
        "two-stage": {**common, "stages": after_synthesis, "data": reuse,
                      "filter": {"type": "lexical"}, "composer": {"type": "adamllm", "two_stage": True},
                      "trainer": _trainer(settings, two_stage=True)},
        "no-filter": {**common, "stages": after_synthesis, "data": reuse,
                      "filter": {"type": "none"}, "composer": {"type": "adamllm"}, "trainer": _trainer(settings)},
    }
    return {name: {"output_dir": f"rows/{name}", **configs[name]} for name in rows}


def run_demo(out_dir: str | Path, settings: DemoSettings, *, ablation: bool = False,
             echo: Callable[[str], None] = print) -> dict:
    """Run (or resume) the demo in ``out_dir``; returns the report (also written there)."""
    from adamllm.config import load_config
    from adamllm.domains.toyshapes import GeneralModelSettings, build_general_model, demo_world
    from adamllm.locking import output_lock
    from adamllm.errors import first_line
    from adamllm.registry import get_plugin_manager
    from adamllm.runner import run_pipeline
    from adamllm.stages import StageError

    started = time.time()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pm = get_plugin_manager()
    echo(f"[demo] 1/3 the toy world in {out / 'world'}")
    world = demo_world(out / "world", seed=settings.seed, fast=settings.fast)
    echo(f"[demo] 2/3 the general model (a tiny {settings.backbone} trained on the general seed tasks)")
    general_settings = GeneralModelSettings.for_world(settings.fast, backbone=settings.backbone, seed=settings.seed)
    general = build_general_model(world, out / "general", general_settings, echo=echo)
    rows = ROWS + (ABLATION_ROWS if ablation else ())
    judged = judges(pm, world)
    results, failed = {}, {}
    for number, (name, path) in enumerate(write_row_configs(out, settings, general, rows).items(), start=1):
        if name in REUSE_METHOD_TASKS and "adamllm" in failed:
            failed[name] = "reads the adamllm row's tasks, and that row did not finish"
            echo(f"[demo] 3/3 row {number}/{len(rows)}: {name}: skipped ({failed[name]})")
            continue
        cfg = load_config(path, pm)
        echo(f"[demo] 3/3 row {number}/{len(rows)}: {name} ({', '.join(cfg.stages)})")
        try:
            with output_lock(cfg.output_dir, command=f"adamllm demo ({name})"):
                run_pipeline(cfg, pm, echo=echo)
        except StageError as exc:  # e.g. a synthesizer that wrote no usable triplet: say so, go on
            failed[name] = first_line(exc)
            echo(f"[demo] row {name} did not finish: {failed[name]}")
            continue
        results[name] = row_scores(cfg.output_dir / "evaluate", judged)
    report = {"settings": {"backbone": settings.backbone, "fast": settings.fast, "seed": settings.seed,
                           "filter": "lexical"},
              "seconds": round(time.time() - started, 1), "rows": results, "failed": failed,
              "chance": text_only_row(world, judged),
              "synthesizers": synthesizer_audits(world, out, [r for r in SYNTHESIZER_ROWS if r in rows])}
    report.update(versions=versions(), compute=stage_times(out, rows, started))
    write_report(out, report)
    for line in table(report) + [""] + audit_lines(report):
        echo(line)
    echo(f"[demo] {timing_line(report)}")
    for line in closing_lines(report, out):
        echo(line)
    return report


def write_row_configs(out: Path, settings: DemoSettings, general_model: Path, rows: tuple[str, ...]) -> dict[str, Path]:
    """Write ``out/ROW.yaml`` for each row (a file is rewritten only when its text changes) and
    return their paths. Every path in them is relative to ``out`` (the general model's folder
    included), so a copied demo folder reruns in place: ``adamllm run COPY/ROW.yaml``."""
    import os

    general = Path(os.path.relpath(Path(general_model).resolve(), Path(out).resolve()))
    paths = {}
    for name, config in row_configs(settings, general, rows).items():
        path = Path(out) / f"{name}.yaml"
        text = f"# adamllm demo, row {name!r}: `adamllm run {path.name}` reruns it\n" + yaml.safe_dump(
            config, sort_keys=False)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        paths[name] = path
    return paths


def judges(pm, world) -> dict:
    """``{(benchmark, scorer): scorer}``: each toy benchmark's own scorer (SLAKE's rules for the
    VQA questions, PMC-VQA's for the choices), under both scorers."""
    from adamllm.evaluation.stage import build_task

    benchmarks = {name: build_task(pm, name, {"source": str(world.benchmark / file)}).benchmark
                  for name, file in FILES.items()}
    return {(name, scorer): bench.get_scorer(scorer, 0) for name, bench in benchmarks.items() for scorer in SCORERS}


def row_scores(evaluate_dir: Path, judged: dict) -> dict:
    """``{benchmark: {scorer: {metric: value}}}`` of one row, its predictions scored by both
    scorers (``judged``: from ``judges``)."""
    from adamllm.io import iter_records

    report = json.loads((evaluate_dir / REPORT).read_text(encoding="utf-8"))
    scores = {}
    for name in report["benchmarks"]:
        records = [r for _, r in iter_records(evaluate_dir / name / PREDICTIONS)]
        scores[name] = {}
        for scorer in SCORERS:
            judge = judged[name, scorer]
            scores[name][scorer] = _kept(judge, judge.aggregate([judge.score_sample(r, i) for i, r in enumerate(records)]))
    return scores


def _kept(judge, aggregate: dict) -> dict:
    return {m: round(aggregate[m], 2) for m in judge.metrics if m in aggregate}


def text_only_row(world, judged: dict) -> dict:
    """What the questions alone score (``text_only_baseline``: the majority answer per question
    type, no model), in the rows' layout: the chance level the table is read against."""
    from adamllm.domains.toyshapes import text_only_baseline

    baseline = text_only_baseline(world)
    return {name: {scorer: _kept(judged[name, scorer], baseline[FILES[name]][scorer]) for scorer in SCORERS}
            for name in FILES}


def headline(row: dict, scorer: str) -> float:
    """The mean of every metric of every benchmark under ``scorer``."""
    values = [v for bench in row.values() for v in bench[scorer].values()]
    return round(sum(values) / len(values), 2) if values else 0.0


def table(report: dict) -> list[str]:
    """The markdown table of every row under each scorer; a row that did not finish says why."""
    rows, failed = report["rows"], report.get("failed") or {}
    shape = next(iter(rows.values()), None) or report.get("chance") or {}
    columns = [(bench, metric) for bench, by in shape.items() for metric in by["legacy"]]
    head = ["row"] + [f"{b.removeprefix('toyshapes_')} {m}" for b, m in columns] + ["mean"]
    lines = []
    for scorer in SCORERS:
        lines += ["", f"toy benchmark, scorer {scorer} (×100)", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        named = list(rows.items()) + ([(CHANCE, report["chance"])] if report.get("chance") else [])
        for name, row in named:
            cells = [f"{row[b][scorer].get(m, 0.0):.1f}" for b, m in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {headline(row, scorer):.1f} |")
        for name, reason in failed.items():
            lines.append(f"| {name} | " + " | ".join(["–"] * len(columns)) + f" | did not finish: {reason} |")
    return lines


def write_report(out: Path, report: dict) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    s = report["settings"]
    intro = [f"# adamllm demo ({s['backbone']}, {'fast' if s['fast'] else 'default'}, seed {s['seed']}, "
             f"filter {s['filter']})",
             "", "Rows: the general model; post-trained on captions only; post-trained with the method "
             "(caption + synthetic task, single stage); ablations when asked for. The last row is no model: "
             f"the most frequent answer per question type, what the text alone scores ({CHANCE}).", "",
             *result_sentences(report), "", timing_line(report), versions_line(report),
             "Look at the data: `adamllm inspect rows/adamllm` from this folder.", ""]
    audit = audit_lines(report)
    (out / "report.md").write_text("\n".join(intro + table(report) + ([""] + audit if audit else []))
                                   + "\n\n![chart](report.png)\n", encoding="utf-8")
    plot(report, out / "report.png")


def plot(report: dict, path: Path) -> None:
    """Grouped bars: the mean score of each row, under each scorer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(report["rows"])
    figure = Figure(figsize=(6.5, 3.8))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = 0.38
    for i, scorer in enumerate(SCORERS):
        xs = [j + (i - 0.5) * width for j in range(len(names))]
        bars = axes.bar(xs, [headline(report["rows"][n], scorer) for n in names], width=width, label=scorer)
        axes.bar_label(bars, fmt="%.1f", fontsize=7)
    if report.get("chance"):  # the same under both scorers: one-word majority answers
        chance = headline(report["chance"], "legacy")
        axes.axhline(chance, color="grey", linestyle="--", linewidth=1)
        axes.annotate(f"text only (chance) {chance:.1f}", (len(names) - 0.5, chance), xytext=(0, 3),
                      textcoords="offset points", ha="right", fontsize=7, color="grey")
    axes.set_xticks(range(len(names)), names, fontsize=8)
    axes.set_ylabel("mean score (×100)")
    axes.set_ylim(0, 100)
    axes.set_title("adamllm demo: the toy benchmark")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
