"""The demo's last words: who wins by how much under each scorer, the command that shows the data
(runnable from where it is printed), the versions it ran with, and the time the rows took to
compute, which a rerun that reuses every stage keeps (it used to report "0.2 s")."""
import json
import os
import shlex
import time
from importlib import metadata
from pathlib import Path

from adamllm.domains.toyshapes.demo import write_report
from adamllm.domains.toyshapes.demo_report import (KEY_PACKAGES, closing_lines, result_sentences, stage_times,
                                                   timing_line, versions)


def row(legacy, strict):
    """A row of the report: (open recall, closed accuracy, choice accuracy) under each scorer."""
    def bench(values, scorer):
        return {"toyshapes_vqa": {"open_recall": values[0], "closed_accuracy": values[1]},
                "toyshapes_choice": {"accuracy": values[2]}}
    by = {"legacy": bench(legacy, "legacy"), "strict": bench(strict, "strict")}
    return {name: {scorer: by[scorer][name] for scorer in by} for name in by["legacy"]}


REPORT = {
    "settings": {"backbone": "qwen2_vl", "fast": False, "seed": 0, "filter": "lexical"}, "seconds": 0.2,
    "rows": {"general": row((27.1, 31.2, 25.0), (27.1, 31.2, 25.0)),
             "caption-only": row((50.0, 3.1, 20.0), (0.0, 3.1, 20.0)),
             "adamllm": row((29.2, 18.8, 45.0), (0.0, 18.8, 45.0))},
    "chance": row((29.2, 50.0, 30.0), (29.2, 50.0, 30.0)),
}


def test_the_sentences_say_who_wins_by_how_much_under_each_scorer():
    legacy, strict = result_sentences(REPORT)
    assert legacy == ("Mean score (x100) under the legacy scorer: adamllm wins with 31.0, 3.2 above general (27.8), "
                      "6.6 above caption-only (24.4).")
    assert strict == ("Mean score (x100) under the strict scorer: general wins with 27.8, 6.5 above adamllm (21.3), "
                      "20.1 above caption-only (7.7). The text alone, no model, scores 36.4 / 36.4.")


def test_a_tie_is_said_as_one():
    tied = {**REPORT, "rows": {"a": REPORT["rows"]["general"], "b": REPORT["rows"]["general"]}, "chance": None}
    assert result_sentences(tied)[0] == "Mean score (x100) under the legacy scorer: a and b tie at 27.8."


def test_the_inspect_command_works_from_the_folder_it_is_printed_in(tmp_path):
    out = tmp_path / "runs" / "demo"
    row_folder = out / "rows" / "adamllm"
    row_folder.mkdir(parents=True)
    for cwd in (tmp_path, out, row_folder, tmp_path / "runs" / "other"):
        cwd.mkdir(parents=True, exist_ok=True)
        lines = closing_lines(REPORT, out, cwd=cwd, extra=["The synthesizer's facts: (said by another part)."])
        assert lines[:2] == result_sentences(REPORT) and lines[2] == "The synthesizer's facts: (said by another part)."
        command = lines[-1].split(": ", 1)[1].split(" (writes")[0]
        words = shlex.split(command)
        assert words[:2] == ["adamllm", "inspect"]
        assert (cwd / words[2]).resolve() == row_folder.resolve(), (cwd, command)
    assert "adamllm inspect runs/demo/rows/adamllm " in closing_lines(REPORT, out, cwd=tmp_path)[-1]
    assert "adamllm inspect . " in closing_lines(REPORT, out, cwd=row_folder)[-1]
    assert f"adamllm inspect {row_folder} " in closing_lines(REPORT, out, cwd=tmp_path / "runs" / "other")[-1]
    spaced = tmp_path / "my demo"
    assert f"adamllm inspect '{spaced}/rows/adamllm'" in closing_lines(REPORT, spaced, cwd=out)[-1]


def test_versions_are_the_installed_ones():
    found = versions()
    assert list(found) == ["python", *KEY_PACKAGES]
    import torch
    import transformers

    assert found["torch"] == torch.__version__ and found["transformers"] == transformers.__version__
    assert found["pillow"] == metadata.version("pillow")


def _done(folder, seconds):
    folder.mkdir(parents=True)
    (folder / "_done.json").write_text(json.dumps({"seconds": seconds, "fingerprint": {}}))


def test_a_rerun_that_reuses_every_stage_keeps_the_compute_time(tmp_path):
    _done(tmp_path / "general" / "train", 90.0)
    for stage, seconds in (("tune", 70.0), ("synthesize", 15.0), ("train", 40.0), ("evaluate", 8.0)):
        _done(tmp_path / "rows" / "adamllm" / stage, seconds)
    _done(tmp_path / "rows" / "general" / "evaluate", 7.0)
    rerun = time.time() + 1  # every _done.json is older than the rerun
    times = stage_times(tmp_path, ["general", "caption-only", "adamllm"], rerun)
    assert (times["seconds"], times["stages"], times["reused"]) == (230.0, 6, 6)
    assert times["parts"]["adamllm"] == {"seconds": 133.0, "stages": {"tune": 70.0, "synthesize": 15.0,
                                                                      "train": 40.0, "evaluate": 8.0}}
    assert times["parts"]["caption-only"] == {"seconds": 0, "stages": {}}
    report = {**REPORT, "compute": times, "versions": versions()}
    assert timing_line(report) == ("Stage time to compute the rows: 3 min 50 s (general model 1 min 30 s, general "
                                   "7.0 s, adamllm 2 min 13 s); this run: 0.2 s, everything reused.")
    write_report(tmp_path, report)
    text = (tmp_path / "report.md").read_text()
    assert "3 min 50 s" in text and "everything reused" in text and "0.2 s)" not in text.splitlines()[0]
    assert f"transformers {metadata.version('transformers')}" in text and "Python " in text
    assert "adamllm wins with 31.0" in text and "`adamllm inspect rows/adamllm` from this folder" in text

    first = stage_times(tmp_path, ["adamllm"], started=0.0)  # the run that computed them reused none
    assert first["reused"] == 0
    one_new = os.path.getmtime(tmp_path / "rows" / "adamllm" / "train" / "_done.json")
    partly = stage_times(tmp_path, ["adamllm"], started=one_new)
    assert timing_line({**REPORT, "compute": {**partly, "reused": 3}}).endswith(
        "this run: 0.2 s, 3 of 5 stages reused.")
