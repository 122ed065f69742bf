"""``adamllm score`` finds benchmarks through the plugins only: the generic ``vqa`` (whose config
requires a source), other spellings of the built-ins' names, JSON-array files, each benchmark's
``prediction_fields``; bad files are one-line errors naming the line."""
import json

import pytest
from click.testing import CliRunner

from adamllm.cli import cli

# legacy VQA rules (the generic `vqa` scores like VQA-RAD), hand-computed:
VQA = [
    {"prediction": "a mass in the left lung", "label": "left lung", "answer_type": "OPEN"},  # recall 2/2 = 1
    {"prediction": "liver", "label": "right kidney", "answer_type": "OPEN"},                 # 0/2 = 0
    {"prediction": "Yes.", "label": "yes", "answer_type": "CLOSED"},                         # 1
    {"prediction": "no", "label": "yes", "answer_type": "closed"},                           # 0
    {"prediction": "Yes, it is", "label": "Yes", "answer_type": "CLOSED"},                   # 1
]
# open (1 + 0) / 2 = 50 ; closed (1 + 0 + 1) / 3 = 66.67


def score(*args):
    return CliRunner().invoke(cli, ["score", *args])


def test_generic_vqa_benchmark_scores_without_a_source(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in VQA))
    result = score("vqa", str(path), "--json")
    assert result.exit_code == 0 and result.exception is None, result.output
    data = json.loads(result.output)
    assert (data["benchmark"], data["scorer"], data["n_records"]) == ("vqa", "legacy", 5)
    assert data["scores"] == {"open_recall": 50.0, "closed_accuracy": pytest.approx(200 / 3)}
    assert data["counts"] == {"open_recall": 2, "closed_accuracy": 3}


def test_json_array_file_and_other_spellings(tmp_path):
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(VQA, indent=2))
    for name, canonical in (("PathVQA", "pathvqa"), ("VQA_RAD", "vqa_rad"), ("VQA-RAD", "vqa_rad")):
        data = json.loads(score(name, str(path), "--json").output)
        assert data["benchmark"] == canonical
        assert data["scores"] == {"open_recall": 50.0, "closed_accuracy": pytest.approx(200 / 3)}


@pytest.mark.parametrize("benchmark, text, message", [
    # the generic vqa: its prediction_fields include answer_type
    ("vqa", '{"prediction": "x", "label": "y", "answer_type": "OPEN"}\n\n{"prediction": "x", "label": "y"}\n',
     "mine.jsonl, line 3: missing field(s) answer_type"),
    # a scorer's ValueError names the record's line
    ("vqa", '{"prediction": "x", "label": "y", "answer_type": "maybe"}\n',
     "mine.jsonl, line 1: answer_type must be OPEN or CLOSED, got 'maybe'"),
    ("PMC-VQA", '{"prediction": "A", "label": "A", "A": "1", "B": "2", "D": "4"}\n',
     "mine.jsonl, line 1: missing field(s) C"),
    ("slake", '{"prediction": "x", "label": "y", "answer_type": "OPEN"}\n{oops\n',
     "mine.jsonl, line 2: invalid JSON"),
    ("food101", '[1, 2]\n', "mine.jsonl, line 1: expected a JSON object"),
])
def test_bad_records_are_one_line_errors(tmp_path, benchmark, text, message):
    path = tmp_path / "mine.jsonl"
    path.write_text(text)
    result = score(benchmark, str(path))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert message in result.output and "Traceback" not in result.output


def test_bad_record_in_a_json_array_names_its_line(tmp_path):
    path = tmp_path / "preds.json"
    path.write_text(json.dumps([VQA[0], {"prediction": "x", "label": "y"}], indent=2))
    # "[" on line 1, the first object on lines 2-6 (its 3 fields on lines 3-5), the second from line 7
    result = score("slake", str(path))
    assert result.exit_code == 1 and "preds.json, line 7: missing field(s) answer_type" in result.output


def test_plugin_benchmark_needs_its_prediction_fields(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"prediction": "blue"}\n')
    result = score("shapes_vqa", str(path))
    assert result.exit_code == 1 and "s.jsonl, line 1: missing field(s) label" in result.output
