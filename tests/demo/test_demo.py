"""`adamllm demo --fast` end to end (what CI runs): killed in the middle of synthesis and rerun, it
finishes; every stage of the method row wrote its files, the report and the data card parse, the
post-trained model scores above the general model, the synthesizer's tasks are audited, and the
resumed synthesis equals an uninterrupted one (so the report after the crash is the report without it)."""
import json
import os
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser

import pytest

pytestmark = pytest.mark.slow

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def demo(out, log):
    """The demo in its own session, its output to ``log`` (a pipe nobody reads while the test
    waits would fill up and block the demo)."""
    return subprocess.Popen([sys.executable, "-m", "adamllm.cli", "demo", "--fast", "--out", str(out)], env=ENV,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, text=True, start_new_session=True)


@pytest.fixture
def demos():
    """The demo processes a test starts, killed (their whole session) when the test ends, so a
    failed or timed-out test leaves no demo running."""
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_demo_killed_mid_synthesis_resumes_and_reports(tmp_path, demos):
    out = tmp_path / "demo"
    progress = out / "rows" / "adamllm" / "synthesize" / "_progress.jsonl"
    first = demo(out, tmp_path / "first.log")
    demos.append(first)
    deadline = time.time() + 900
    killed = False
    while time.time() < deadline and first.poll() is None:
        if progress.exists() and progress.read_text().count("\n") >= 1:
            os.killpg(first.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    assert killed or first.poll() is not None, (  # said plainly, not as a TimeoutExpired below
        "the demo did not reach synthesis within 15 minutes (a busy machine?): "
        + (tmp_path / "first.log").read_text()[-2000:])
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL, ("the demo ended before synthesis could be interrupted: "
                                                 + (tmp_path / "first.log").read_text()[-2000:])
    assert (out / "rows" / "adamllm" / "synthesize" / "_running.json").exists()

    second = demo(out, tmp_path / "second.log")
    demos.append(second)
    second.wait(timeout=900)
    log = (tmp_path / "second.log").read_text()
    assert second.returncode == 0, log[-3000:]
    assert "[synthesize] resuming" in log and "| adamllm |" in log

    row = out / "rows" / "adamllm"
    for path in ("tune/model", "synthesize/triplets.jsonl", "synthesize/stats.json", "filter/verdicts.jsonl",
                 "compose/mix.jsonl", "compose/dataset", "train/model/model.safetensors", "evaluate/report.json"):
        assert (row / path).exists(), path
    report = json.loads((out / "report.json").read_text())
    assert list(report["rows"]) == ["general", "caption-only", "adamllm"]
    legacy = {name: [v for bench in r.values() for v in bench["legacy"].values()] for name, r in report["rows"].items()}
    assert sum(legacy["adamllm"]) > sum(legacy["general"]), report["rows"]
    assert sum(legacy["adamllm"]) > sum(legacy["caption-only"]), report["rows"]  # with the pinned versions
    assert report["failed"] == {}
    # the tuned synthesizer's tasks are audited against the world's facts: every line it wrote
    written = (row / "synthesize" / "triplets.jsonl").read_text().count("\n")
    audit = report["synthesizers"]["adamllm"]
    assert audit["synthesized"]["triplets"] == written > 0 and audit["kept"]["triplets"] <= written
    assert "Checked against the world's facts, the tuned synthesizer's tasks are" in log
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG" and "| adamllm |" in (out / "report.md").read_text()

    card = subprocess.run([sys.executable, "-m", "adamllm.cli", "inspect", str(row)], env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert card.returncode == 0, card.stderr[-2000:]
    parser = HTMLParser()
    parser.feed((row / "card.html").read_text())  # parses

    # the resumed synthesis equals an uninterrupted one with the same tuned synthesizer
    check = subprocess.run([sys.executable, "-m", "adamllm.cli", "run", str(out / "adamllm.yaml"), "output_dir=check",
                            "stages=[synthesize]", f"synthesizer.model.model={row / 'tune' / 'model'}"],
                           env=ENV, capture_output=True, text=True, timeout=600)
    assert check.returncode == 0, check.stderr[-2000:]
    assert (out / "check" / "synthesize" / "triplets.jsonl").read_bytes() == (row / "synthesize" / "triplets.jsonl").read_bytes()

    # a rerun reuses every stage: the report keeps the time the rows took to compute and says this
    # run's apart; it ends with who wins and an inspect command that works from where it is printed
    third = subprocess.Popen([sys.executable, "-m", "adamllm.cli", "demo", "--fast", "--out", "demo"], env=ENV,
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    try:
        log = third.communicate(timeout=600)[0]
    finally:
        if third.poll() is None:  # timed out: leave no demo running
            os.killpg(third.pid, signal.SIGKILL)
            third.wait()
    assert third.returncode == 0, log[-3000:]
    again = json.loads((out / "report.json").read_text())
    assert again["rows"] == report["rows"], log[-2000:]
    assert (again["compute"]["seconds"], again["compute"]["parts"]) == (report["compute"]["seconds"],
                                                                       report["compute"]["parts"])
    assert again["compute"]["reused"] == again["compute"]["stages"] >= 9 and again["compute"]["seconds"] > 10
    assert "everything reused" in log and "everything reused" in (out / "report.md").read_text()
    import transformers

    assert again["versions"]["transformers"] == transformers.__version__
    assert "Mean score (x100) under the legacy scorer: " in log
    command = next(line for line in log.splitlines() if "adamllm inspect " in line)
    shown = command.split("adamllm inspect ", 1)[1].split(" (writes")[0]
    assert shown == "demo/rows/adamllm", command
    printed = subprocess.run([sys.executable, "-m", "adamllm.cli", "inspect", shown], cwd=tmp_path, env=ENV,
                             capture_output=True, text=True, timeout=300)
    assert printed.returncode == 0, printed.stderr[-2000:]
    numbers = json.loads((row / "card.json").read_text())
    assert numbers["lengths"]["caption"]["n"] > 0 and numbers["overlap"]["status"] == "checked", numbers["notes"]
    assert numbers["overlap"]["exact_pairs"] == 0
