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
