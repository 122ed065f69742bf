"""The demo's report around its table: the versions it ran with, the time its rows took to compute,
the synthesizers' audit (how true their tasks are of the images) and the closing sentences (who
wins by how much, and the command that shows the data).

Times come from the stages' own ``_done.json`` (``seconds``: what the stage took when it ran), so a
rerun that reuses every stage still reports the time the rows took to compute, and says apart what
this run took (a stage is reused when its ``_done.json`` is older than this run).
"""
from __future__ import annotations

import json
import os
import platform
import shlex
from importlib import metadata
from pathlib import Path
from typing import Iterable

from adamllm.layout import RunLayout

#: The packages whose versions move the demo's numbers (constraints.txt pins them; ``make lock``).
KEY_PACKAGES = ("torch", "transformers", "accelerate", "peft", "datasets", "tokenizers", "pillow", "numpy")


def versions() -> dict[str, str]:
    """Python's and the key packages' versions, as installed (``not installed`` when missing)."""
    found = {"python": platform.python_version()}
    for name in KEY_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def stage_times(out: Path, rows: Iterable[str], started: float) -> dict:
    """``{"seconds", "stages", "reused", "parts": {part: {"seconds", "stages": {stage: seconds}}}}``:
    the time each stage of the general model (``general``) and of each row took when it computed,
    and how many of them this run (started at ``started``) reused."""
    from adamllm.stages import STAGES

    folders = {"general model": Path(out) / "general", **{name: Path(out) / "rows" / name for name in rows}}
    parts, count, reused = {}, 0, 0
    for part, folder in folders.items():
        stages = {}
        for stage in STAGES:
            done = RunLayout(folder).done(stage)
            try:
                seconds = float(json.loads(done.read_text(encoding="utf-8"))["seconds"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            stages[stage] = round(seconds, 1)
            count += 1
            reused += done.stat().st_mtime < started
        parts[part] = {"seconds": round(sum(stages.values()), 1), "stages": stages}
    return {"seconds": round(sum(p["seconds"] for p in parts.values()), 1), "stages": count, "reused": reused,
            "parts": parts}


def duration(seconds: float) -> str:
    """``3 min 48 s``, ``12.5 s``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def timing_line(report: dict) -> str:
    """When the rows were computed and what this run took."""
    compute, this_run = report.get("compute"), report.get("seconds", 0.0)
    if not compute:
        return f"Run time: {duration(this_run)}."
    parts = ", ".join(f"{name} {duration(part['seconds'])}" for name, part in compute["parts"].items() if part["stages"])
    if compute["stages"] and compute["reused"] == compute["stages"]:
        now = f"this run: {duration(this_run)}, everything reused"
    elif compute["reused"]:
        now = f"this run: {duration(this_run)}, {compute['reused']} of {compute['stages']} stages reused"
    else:
        now = f"this run: {duration(this_run)}"
    return f"Stage time to compute the rows: {duration(compute['seconds'])} ({parts}); {now}."


def versions_line(report: dict) -> str:
    found = report.get("versions") or {}
    named = ", ".join(f"{'Python' if k == 'python' else k} {v}" for k, v in found.items())
    return f"Versions: {named} (constraints.txt pins them; `make lock` refreshes it)." if found else ""


def _means(report: dict, scorer: str) -> list[tuple[str, float]]:
    from adamllm.domains.toyshapes.demo import headline

    # rounded as shown, so that a margin is the difference of the numbers printed beside it
    return sorted(((name, round(headline(row, scorer), 1)) for name, row in report["rows"].items()),
                  key=lambda kv: -kv[1])


def result_sentences(report: dict) -> list[str]:
    """Which row wins by how much under each scorer (the mean of every metric, x100), the
    text-only chance level, and how true the synthesizers' tasks are (``audit_sentence``)."""
    from adamllm.domains.toyshapes.demo import SCORERS, headline

    said = []
    for scorer in SCORERS:
        means = _means(report, scorer)
        if not means:
            return ["No row has scores."]
        (best, top), rest = means[0], means[1:]
        tied = [name for name, value in rest if value == top]
        if tied:
            lead = f"{' and '.join([best, *tied])} tie at {top:.1f}"
            rest = [(n, v) for n, v in rest if n not in tied]
        else:
            lead = f"{best} wins with {top:.1f}"
        behind = ", ".join(f"{top - value:.1f} above {name} ({value:.1f})" for name, value in rest)
        said.append(f"Mean score (x100) under the {scorer} scorer: {lead}" + (f", {behind}." if behind else "."))
    if report.get("chance"):
        legacy, strict = (headline(report["chance"], s) for s in SCORERS)
        said[-1] += f" The text alone, no model, scores {legacy:.1f} / {strict:.1f}."
    if report.get("synthesizers"):
        said.append(audit_sentence(report))
    return said


def shown_path(path: Path, cwd: Path | None = None) -> str:
    """``path`` as a command run from ``cwd`` needs it: relative when inside it, else absolute."""
    path, cwd = Path(path).resolve(), Path(cwd or Path.cwd()).resolve()
    relative = os.path.relpath(path, cwd)
    return shlex.quote(relative if not relative.startswith("..") else str(path))


def closing_lines(report: dict, out: Path, cwd: Path | None = None, extra: Iterable[str] = ()) -> list[str]:
    """The demo's last lines: who wins by how much, ``extra`` sentences (more findings to say, such
    as the synthesizer's fact accuracy), and the command that shows the method row's data, written
    to work from ``cwd`` (default: the current folder)."""
    row = Path(out) / "rows" / "adamllm"
    look = (f"Look at the data the method made: adamllm inspect {shown_path(row, cwd)} (writes its card.html); "
            f"the full report is {shown_path(Path(out) / 'report.md', cwd)}.")
    return [*result_sentences(report), *extra, look]


def synthesizer_audits(world, out: Path, rows: Iterable[str]) -> dict:
    """``{row: {"synthesized": audit, "kept": audit}}``: each row's synthesized tasks checked against
    the world's facts (``audit.audit_triplets``), all of them and those its filter kept (a ``yes``
    verdict); a row that wrote no triplets file is left out."""
    from adamllm.domains.toyshapes.audit import audit_triplets
    from adamllm.io import iter_records

    audits = {}
    for name in rows:
        folder = Path(out) / "rows" / name
        path = RunLayout(folder).triplets
        if not path.is_file():
            continue
        triplets = [record for _, record in iter_records(path)]
        audits[name] = {"synthesized": audit_triplets(world, triplets)}
        verdicts = RunLayout(folder).verdicts
        if verdicts.is_file():
            kept = {v["id"] for _, v in iter_records(verdicts) if v.get("verdict") == "yes"}
            audits[name]["kept"] = audit_triplets(world, [t for t in triplets if t["id"] in kept])
    return audits


def audit_lines(report: dict) -> list[str]:
    """The synthesizers' audit as a markdown table: how many tasks, the share whose precise answer
    is true of the image (all, and those the filter kept), and per question family; none without
    an audited row."""
    if not report.get("synthesizers"):
        return []
    lines = ["synthesized tasks against the world's facts (precise answer true of the image)",
             "| synthesizer row | triplets | true | kept by filter | kept true | families | distinct instructions "
             "| true per family |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, audit in report["synthesizers"].items():
        made, kept = audit["synthesized"], audit.get("kept")
        per = ", ".join(f"{family} {v['true']}/{v['n']}" for family, v in made["families"].items()) or "–"
        kept_cells = (f"{kept['triplets']} | {kept['fact_accuracy']:.1f}%" if kept else "– | –")
        lines.append(f"| {name} | {made['triplets']} | {made['fact_accuracy']:.1f}% | {kept_cells} | "
                     f"{made['families_covered']} | {made['distinct_instructions']} | {per} |")
    return lines


def audit_sentence(report: dict) -> str:
    """One sentence: how true the tuned synthesizer's tasks are (and the rules', when run)."""
    audits = report.get("synthesizers") or {}
    said = []
    for name, who in (("adamllm", "the tuned synthesizer's"), ("rules", "the rules'")):
        if name in audits:
            made, kept = audits[name]["synthesized"], audits[name].get("kept")
            after = f", {kept['fact_accuracy']:.1f}% of the {kept['triplets']} the filter kept" if kept else ""
            said.append(f"{who} tasks are {made['fact_accuracy']:.1f}% true of their image "
                        f"({made['true']} of {made['triplets']}{after})")
    if not said:
        return "No synthesizer row wrote tasks to audit."
    text = "; ".join(said)
    return f"Checked against the world's facts, {text}."
