"""The demo's report: each row scored by the benchmarks' own scorers, the text-only chance row,
the table and the chart (no model: predictions are written by hand)."""
import json

from adamllm.domains.toyshapes.demo import (CHANCE, FILES, headline, judges, row_scores, table, text_only_row,
                                            write_report)
from adamllm.registry import get_plugin_manager


def _evaluated(folder, world, answer):
    """An evaluate stage folder whose predictions are ``answer(row)`` for every benchmark row."""
    for name, file in FILES.items():
        rows = [json.loads(line) for line in (world.benchmark / file).read_text().splitlines() if line.strip()]
        (folder / name).mkdir(parents=True)
        (folder / name / "predictions.jsonl").write_text(
            "".join(json.dumps({**row, "prediction": answer(row)}) + "\n" for row in rows))
    (folder / "report.json").write_text(json.dumps({"benchmarks": {name: {} for name in FILES}}))
    return folder


def test_rows_are_scored_by_both_scorers_and_read_against_chance(tmp_path, fast_world):
    judged = judges(get_plugin_manager(), fast_world)
    right = row_scores(_evaluated(tmp_path / "right", fast_world, lambda r: r["label"]), judged)
    assert right == {"toyshapes_vqa": {s: {"open_recall": 100.0, "closed_accuracy": 100.0} for s in ("legacy", "strict")},
                     "toyshapes_choice": {s: {"accuracy": 100.0} for s in ("legacy", "strict")}}
    # a sentence that ends on the label: legacy open recall takes it, strict exact match does not
    sentence = row_scores(_evaluated(tmp_path / "sentence", fast_world, lambda r: f"It is {r['label']}."), judged)
    assert sentence["toyshapes_vqa"]["legacy"]["open_recall"] == 100.0
    assert sentence["toyshapes_vqa"]["strict"]["open_recall"] == 0.0

    chance = text_only_row(fast_world, judged)  # balanced answers: chance level, the same under both scorers
    assert chance["toyshapes_vqa"]["legacy"] == chance["toyshapes_vqa"]["strict"]
    assert chance["toyshapes_vqa"]["legacy"]["closed_accuracy"] == 50.0
    assert chance["toyshapes_choice"]["legacy"]["accuracy"] < 50.0

    report = {"settings": {"backbone": "qwen2_vl", "fast": True, "seed": 0, "filter": "lexical"}, "seconds": 1.0,
              "rows": {"perfect": right}, "chance": chance}
    lines = table(report)
    assert "| perfect | 100.0 | 100.0 | 100.0 | 100.0 |" in lines
    assert f"| {CHANCE} | " in "\n".join(lines) and f"{headline(chance, 'legacy'):.1f} |" in lines[-1]
    write_report(tmp_path, report)
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert CHANCE in (tmp_path / "report.md").read_text()


def test_a_row_that_did_not_finish_is_reported_with_its_reason(tmp_path, fast_world):
    judged = judges(get_plugin_manager(), fast_world)
    right = row_scores(_evaluated(tmp_path / "right", fast_world, lambda r: r["label"]), judged)
    reason = "stage 'filter' found no usable triplets: 0 rejected (none)"
    report = {"settings": {"backbone": "qwen2_vl", "fast": True, "seed": 1, "filter": "lexical"}, "seconds": 1.0,
              "rows": {"general": right}, "failed": {"adamllm": reason},
              "chance": text_only_row(fast_world, judged)}
    lines = table(report)
    assert f"| adamllm | – | – | – | did not finish: {reason} |" in lines
    write_report(tmp_path, report)
    text = (tmp_path / "report.md").read_text()
    assert "did not finish" in text and "general wins with 100.0" in text
    # no row at all: the table still has its columns (from the chance row) and says so
    empty = table({**report, "rows": {}, "failed": {"general": "x", "adamllm": reason}})
    assert "| general | – | – | – | did not finish: x |" in empty


def _row(out, name, triplets, verdicts=None):
    folder = out / "rows" / name
    (folder / "synthesize").mkdir(parents=True)
    (folder / "synthesize" / "triplets.jsonl").write_text("".join(json.dumps(t) + "\n" for t in triplets))
    if verdicts is not None:
        (folder / "filter").mkdir()
        (folder / "filter" / "verdicts.jsonl").write_text("".join(
            json.dumps({"id": t["id"], "verdict": v}) + "\n" for t, v in zip(triplets, verdicts)))


def test_each_synthesizer_row_is_audited_all_and_after_its_filter(tmp_path, fast_world):
    from adamllm.domains.toyshapes import truth_triplets
    from adamllm.domains.toyshapes.demo_report import audit_lines, audit_sentence, synthesizer_audits

    truth = [{k: v for k, v in t.items() if k != "family"} for t in truth_triplets(fast_world)][:40]
    wrong = [{**t, "precise": "Write a poem."} for t in truth[:10]]  # 10 untrue tasks, then 30 true ones
    tasks = wrong + truth[10:]
    _row(tmp_path, "adamllm", tasks, ["no"] * 10 + ["yes"] * 20 + ["open"] * 10)
    _row(tmp_path, "rules", truth[:8])  # no filter folder: no "kept" audit
    audits = synthesizer_audits(fast_world, tmp_path, ["adamllm", "rules", "two-stage"])
    assert list(audits) == ["adamllm", "rules"]  # two-stage wrote no triplets of its own
    made, kept = audits["adamllm"]["synthesized"], audits["adamllm"]["kept"]
    assert (made["triplets"], made["true"], made["fact_accuracy"]) == (40, 30, 75.0)
    assert (kept["triplets"], kept["true"], kept["fact_accuracy"]) == (20, 20, 100.0)
    assert "kept" not in audits["rules"] and audits["rules"]["synthesized"]["fact_accuracy"] == 100.0
    report = {"synthesizers": audits}
    lines = audit_lines(report)
    assert lines[3].startswith("| adamllm | 40 | 75.0% | 20 | 100.0% | ") and lines[4].startswith("| rules | 8 | 100.0% | – | – |")
    assert audit_sentence(report) == ("Checked against the world's facts, the tuned synthesizer's tasks are 75.0% true of "
                                      "their image (30 of 40, 100.0% of the 20 the filter kept); the rules' tasks are "
                                      "100.0% true of their image (8 of 8).")
    assert audit_sentence({"synthesizers": {}}) == "No synthesizer row wrote tasks to audit."
