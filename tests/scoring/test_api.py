"""The public API: get_scorer, aggregate, score_records, read_prediction_file."""
import json

import pytest

from adamllm.domains.scoring import (BENCHMARKS, SCORERS, SampleScore, get_scorer,
                                     read_prediction_file, score_records)


def test_get_scorer_names():
    judge = get_scorer("PMC-VQA", "strict", seed=4)
    assert (judge.benchmark, judge.scorer, judge.version) == ("pmc_vqa", "strict", "strict-1")
    assert get_scorer("VQA_RAD").metrics == ("open_recall", "closed_accuracy")
    assert get_scorer("slake").version == "legacy-1"
    with pytest.raises(ValueError, match="slake, pathvqa"):
        get_scorer("chexpert")
    with pytest.raises(ValueError, match="legacy, strict"):
        get_scorer("slake", "lenient")
    for benchmark in BENCHMARKS:
        for scorer in SCORERS:
            assert get_scorer(benchmark, scorer).metrics


VQA = [
    {"prediction": "lung lung lung", "label": "lung heart", "answer_type": "OPEN"},  # 0.75
    {"prediction": "", "label": "liver", "answer_type": "open"},                     # 0
    {"prediction": "Nodule", "label": "no", "answer_type": "CLOSED"},                # 1 / 0
    {"prediction": "Yes", "label": "yes", "answer_type": "closed"},                  # 1 / 1
    {"prediction": "No", "label": "yes", "answer_type": "CLOSED"},                   # 0 / 0
]


def test_vqa_aggregate():
    # open: (0.75 + 0) / 2 = 37.5 ; closed: (1 + 1 + 0) / 3 = 66.67
    assert score_records("slake", VQA) == {
        "open_recall": 37.5, "n_open_recall": 2,
        "closed_accuracy": pytest.approx(200 / 3), "n_closed_accuracy": 3}
    # strict: open exact (0 + 0) / 2 ; closed (0 + 1 + 0) / 3
    assert score_records("pathvqa", VQA, "strict") == {
        "open_recall": 0.0, "n_open_recall": 2,
        "closed_accuracy": pytest.approx(100 / 3), "n_closed_accuracy": 3}


def test_metric_without_samples_is_omitted():
    assert score_records("vqa_rad", VQA[2:]) == {"closed_accuracy": pytest.approx(200 / 3),
                                                 "n_closed_accuracy": 3}
    assert get_scorer("recipe1m").aggregate([]) == {}
    with pytest.raises(ValueError, match="does not report"):
        get_scorer("recipe1m").aggregate([SampleScore("f1", 1.0)])


def test_bad_record_names_its_index():
    records = [VQA[0], {"prediction": "x", "label": "y", "answer_type": "maybe"}]
    with pytest.raises(ValueError, match="record 1: answer_type must be OPEN or CLOSED"):
        score_records("slake", records)


def _write(tmp_path, lines):
    path = tmp_path / "preds.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_prediction_file(tmp_path):
    path = _write(tmp_path, [json.dumps(VQA[0]), "", json.dumps(VQA[3])])
    assert read_prediction_file(path, "SLAKE") == [VQA[0], VQA[3]]


@pytest.mark.parametrize("benchmark, lines, message", [
    ("slake", [json.dumps(VQA[0]), "{bad json"], r"preds\.jsonl, line 2: invalid JSON"),
    ("slake", [json.dumps(VQA[0]), "", '{"prediction": "x", "label": "y"}'],
     "line 3: missing field.* answer_type"),
    ("pmc_vqa", ['{"prediction": "x", "label": "A", "A": "1", "B": "2", "D": "4"}'],
     r"line 1: missing field\(s\) C$"),
    ("recipe1m", ["[1, 2]"], "line 1: expected a JSON object"),
    ("vqa_rad", ['{"prediction": "x", "label": "y", "answer_type": "both"}'],
     "line 1: answer_type must be OPEN or CLOSED"),
])
def test_read_prediction_file_errors(tmp_path, benchmark, lines, message):
    path = _write(tmp_path, lines)
    with pytest.raises(ValueError, match=message) as caught:
        read_prediction_file(path, benchmark)
    assert str(path) in str(caught.value)
