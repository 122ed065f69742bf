"""Evaluation reports: ``report.json`` / ``report.md`` / ``report.png``, and side-by-side comparisons.

A report (``adamllm.evaluate.evaluate`` builds it) names, for every number, the scorer and its
version, the generation settings and how many samples it averages, so numbers can be compared
with the paper's and with each other. ``compare_*`` put several runs side by side
(``adamllm report RUN_DIR...``) and mark benchmarks whose scorers differ between runs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from .io import DataError, temp_path
from .layout import REPORT as REPORT_FILE, RunLayout


# -- loading -------------------------------------------------------------------------------
def find_report(path: str | os.PathLike) -> Path:
    """``report.json`` of an evaluation folder, of a pipeline output folder (``evaluate/``), or the file itself."""
    path = Path(path)
    for candidate in (path, path / REPORT_FILE, RunLayout(path).output("evaluate")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {REPORT_FILE} in {path} (nor in {path / 'evaluate'})")


def load_runs(paths: Sequence[str | os.PathLike]) -> list[tuple[str, dict]]:
    """``(label, report)`` per run; labels are the folder names, made unique."""
    runs = []
    for path in paths:
        file = find_report(path)
        folder = file.parent.parent if file.parent.name == "evaluate" else file.parent
        try:
            report = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{file}:{exc.lineno}: not a valid report ({exc.msg})") from None
        if not isinstance(report, dict):
            raise DataError(f"{file}: not a report (expected a JSON object)")
        runs.append((folder.name or str(folder), report))
    labels = [label for label, _ in runs]
    return [(label if labels.count(label) == 1 else f"{label} ({i + 1})", report)
            for i, (label, report) in enumerate(runs)]


# -- rows ----------------------------------------------------------------------------------
def rows(report: dict) -> list[tuple[str, str, float, int | None, dict]]:
    """``(benchmark, metric, value, n, benchmark result)`` in report order, then domain averages."""
    out = []
    for name, result in report.get("benchmarks", {}).items():
        for metric, value in result["scores"].items():
            out.append((name, metric, value, result.get("counts", {}).get(metric), result))
    for domain, average in report.get("averages", {}).items():
        n = len(average["columns"])
        out.append((domain, f"average ({n} column{'s' if n != 1 else ''})", average["value"], None, {}))
    return out


def _scorer(result: dict) -> str:
    return f"{result['scorer']} ({result['scorer_version']})" if result else ""


def markdown(report: dict) -> str:
    """One run as a Markdown table, with what the numbers were computed with."""
    lines = [
        "# Evaluation report",
        "",
        f"- model: `{report.get('model', '')}` (backbone `{report.get('backbone', '')}`)",
        f"- adamllm {report.get('adamllm_version', '?')}, {report.get('created', '')}, "
        f"seed {report.get('seed', 0)}, {report.get('num_processes', 1)} process(es)",
        "- scores ×100; decoding greedy unless the table says otherwise",
        *_budget_line(report),
        "",
        "| benchmark | metric | score | n | scorer | max new tokens | samples (errors) |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for name, metric, value, n, result in rows(report):
        generation = result.get("generation", {})
        tokens = str(generation.get("max_new_tokens", "")) + (" (sampled)" if generation.get("do_sample") else "")
        samples = f"{result['n_samples']} ({result['n_errors']})" if result else ""
        bold = "" if result else "**"
        lines.append(f"| {bold}{name}{bold} | {metric} | {bold}{value:.2f}{bold} | {'' if n is None else n} | "
                     f"{_scorer(result)} | {tokens} | {samples} |")
    return "\n".join(lines) + "\n"


def _budget_line(report: dict) -> list[str]:
    """The image budget the benchmarks were asked with (the Qwen-VL families), and where it came from."""
    prompting = next((r["prompting"] for r in report.get("benchmarks", {}).values() if r.get("prompting")), {})
    low, high = prompting.get("min_pixels"), prompting.get("max_pixels")
    if low is None and high is None:
        return []
    origin = (report.get("image_budget") or {}).get("from")
    return [f"- image budget {low}..{high} pixels" + (f" ({origin})" if origin else "")]


def compare(runs: Sequence[tuple[str, dict]]) -> dict:
    """Runs side by side: ``{"runs": [...], "rows": [{"benchmark", "metric", "values": {run: value}}],
    "scorer_mismatch": [benchmarks whose scorer or version differs between runs]}``."""
    table: dict[tuple[str, str], dict[str, float]] = {}
    scorers: dict[str, set[str]] = {}
    for label, report in runs:
        for name, metric, value, _, result in rows(report):
            table.setdefault((name, metric), {})[label] = value
            if result:
                scorers.setdefault(name, set()).add(_scorer(result))
    return {
        "runs": [{"label": label, "model": report.get("model"), "created": report.get("created"),
                  "scorers": {n: _scorer(r) for n, r in report.get("benchmarks", {}).items()}}
                 for label, report in runs],
        "rows": [{"benchmark": name, "metric": metric, "values": values} for (name, metric), values in table.items()],
        "scorer_mismatch": sorted(name for name, found in scorers.items() if len(found) > 1),
    }


def compare_markdown(runs: Sequence[tuple[str, dict]]) -> str:
    data = compare(runs)
    labels = [label for label, _ in runs]
    lines = ["| benchmark | metric | " + " | ".join(labels) + " |",
             "|---|---|" + "---:|" * len(labels)]
    for row in data["rows"]:
        mark = " †" if row["benchmark"] in data["scorer_mismatch"] else ""
        cells = [f"{row['values'][label]:.2f}" if label in row["values"] else "–" for label in labels]
        lines.append(f"| {row['benchmark']}{mark} | {row['metric']} | " + " | ".join(cells) + " |")
    lines.append("")
    for run in data["runs"]:
        scorers = sorted(set(run["scorers"].values()))
        lines.append(f"- {run['label']}: model `{run['model']}`, "
                     f"{run['created']}, scorer {', '.join(scorers) or '-'}")
    if data["scorer_mismatch"]:
        lines.append("- † the runs scored this benchmark with different scorers: its numbers are not comparable")
    return "\n".join(lines) + "\n"


# -- chart ---------------------------------------------------------------------------------
def plot(runs: Sequence[tuple[str, dict]], path: str | os.PathLike) -> Path:
    """A grouped bar chart (one group per benchmark metric, one bar per run) as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = compare(runs)
    labels = [label for label, _ in runs]
    columns = [f"{r['benchmark']}\n{r['metric']}".replace(" (", "\n(") for r in data["rows"]]
    width = 0.8 / max(len(labels), 1)
    figure = Figure(figsize=(max(6.0, 0.9 * len(columns) + 2), 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for i, label in enumerate(labels):
        xs = [j + (i - (len(labels) - 1) / 2) * width for j in range(len(columns))]
        ys = [row["values"].get(label, 0.0) for row in data["rows"]]
        bars = axes.bar(xs, ys, width=width, label=label)
        axes.bar_label(bars, fmt="%.1f", fontsize=6)
    axes.set_xticks(range(len(columns)), columns, fontsize=7, rotation=0)
    axes.set_ylabel("score (×100)")
    axes.set_ylim(0, 100)
    axes.set_title("adamllm evaluation")
    if len(labels) > 1:
        axes.legend(fontsize=8)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, format="png", dpi=100)
    return path


# -- writing -------------------------------------------------------------------------------
def write_report(report: dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.png`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / REPORT_FILE, "md": out / "report.md", "png": out / "report.png"}
    # each file is written under a name of its own (pid + random suffix) and renamed into place,
    # so two processes writing the same folder never mix their bytes
    writers = {
        "json": lambda tmp: tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str),
                                           encoding="utf-8"),
        "md": lambda tmp: tmp.write_text(markdown(report), encoding="utf-8"),
        "png": lambda tmp: plot([(out.name or "run", report)], tmp),
    }
    for key, write in writers.items():
        tmp = temp_path(paths[key])
        try:
            write(tmp)
            os.replace(tmp, paths[key])
        finally:
            tmp.unlink(missing_ok=True)
    return paths
