"""``adamllm score``: predictions files scored without a model, against hand-computed values."""
import json

import pytest
from click.testing import CliRunner

from adamllm.cli import cli

# SLAKE, hand-computed.                                   legacy          strict
SLAKE = [
    {"prediction": "The left lung", "label": "lung", "answer_type": "OPEN"},    # recall 1      exact 0
    {"prediction": "Lung.", "label": "Lung", "answer_type": "OPEN"},            # 1             1
    {"prediction": "heart", "label": "liver", "answer_type": "OPEN"},           # 0             0
    {"prediction": "Yes, it is.", "label": "yes", "answer_type": "CLOSED"},     # 1             1
    {"prediction": "nodule", "label": "no", "answer_type": "CLOSED"},           # 1 ("no" in it) 0
    {"prediction": "No.", "label": "yes", "answer_type": "CLOSED"},             # 0             0
    {"id": "q7", "prediction": "no", "label": "no", "answer_type": "closed"},   # 1             1
]
# legacy: open (1+1+0)/3 = 66.67, closed (1+1+0+1)/4 = 75 ; strict: open 1/3 = 33.33, closed 2/4 = 50


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def score(*args):
    result = CliRunner().invoke(cli, ["score", *args])
    return result


def test_slake_legacy_and_strict(tmp_path):
    path = write(tmp_path / "slake.jsonl", SLAKE)
    result = score("slake", path, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["benchmark"] == "slake" and data["scorer"] == "legacy" and data["scorer_version"] == "legacy-1"
    assert data["n_records"] == 7
    assert data["scores"] == {"open_recall": pytest.approx(200 / 3), "closed_accuracy": 75.0}
    assert data["counts"] == {"open_recall": 3, "closed_accuracy": 4}
    strict = json.loads(score("SLAKE", path, "--scorer", "strict", "--json").output)
    assert strict["scorer_version"] == "strict-1"
    assert strict["scores"] == {"open_recall": pytest.approx(100 / 3), "closed_accuracy": 50.0}


def test_text_output_names_the_metrics_and_the_scorer(tmp_path):
    result = score("vqa_rad", write(tmp_path / "p.jsonl", SLAKE))
    assert result.exit_code == 0, result.output
    assert "scorer legacy (legacy-1)" in result.output
    assert "open_recall         66.67  (n=3)" in result.output
    assert "closed_accuracy     75.00  (n=4)" in result.output


def test_multiple_choice_and_food(tmp_path):
    options = {"A": "CT", "B": "MRI", "C": "X-ray", "D": "Ultrasound"}
    pmc = [{"prediction": "(B) MRI", "label": "B", **options},            # bracketed letter: B, right
           {"prediction": "The answer is C", "label": "C", **options},    # bare letter token: C, right
           {"prediction": "It is an ultrasound image", "label": "A", **options},  # option text: D, wrong
           {"prediction": "(A) or maybe (C)", "label": "A", **options}]   # the last candidate wins: C, wrong
    data = json.loads(score("PMC-VQA", write(tmp_path / "pmc.jsonl", pmc), "--json").output)
    assert data["scores"] == {"accuracy": 50.0} and data["counts"] == {"accuracy": 4}

    food101 = [{"prediction": "This is apple pie.", "label": "apple pie"},
               {"prediction": "It looks like beet salad", "label": "beet_salad"},
               {"prediction": "It looks like beet salad", "label": "baklava"}]
    assert json.loads(score("food101", write(tmp_path / "f.jsonl", food101), "--json").output)["scores"] == {
        "accuracy": pytest.approx(200 / 3)}

    # recall per sample: 2/3 (lettuce, bacon of 3), then 1/2 (hash browns); mean 58.33
    nutrition = [{"prediction": "Lettuce with bacon bits", "label": ["lettuce", "olives", "bacon"]},
                 {"prediction": "hash browns", "label": ["scrambled eggs", "hash browns"]}]
    data = json.loads(score("nutrition5k", write(tmp_path / "n.jsonl", nutrition), "--json").output)
    assert data["scores"] == {"recall": pytest.approx(100 * (2 / 3 + 1 / 2) / 2)}

    # F1 per sample: found {french fries, egg tart} vs {french fries, egg tart} = 1; found {cake} vs {} ... = 2*0/(1+1)
    seg = [{"prediction": "french fries and an egg tart", "label": ["french fries", "egg tart"]},
           {"prediction": "a cake", "label": ["chocolate"]}]
    data = json.loads(score("foodseg103", write(tmp_path / "s.jsonl", seg), "--json").output)
    assert data["scores"] == {"f1": 50.0}


def test_third_party_benchmark_uses_its_own_scorer(tmp_path):
    records = [{"prediction": "It is blue.", "label": "blue"}, {"prediction": "no", "label": "yes"}]
    data = json.loads(score("shapes_vqa", write(tmp_path / "s.jsonl", records), "--json").output)
    assert (data["scorer"], data["scorer_version"], data["scores"]) == ("exact", "exact-1", {"accuracy": 50.0})


def test_bad_files_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(SLAKE[0]) + "\n" + json.dumps({"prediction": "x", "label": "y"}) + "\n")
    result = score("slake", str(path))
    assert result.exit_code != 0 and "bad.jsonl, line 2: missing field(s) answer_type" in result.output
    result = score("chexpert", str(path))
    assert result.exit_code != 0 and "unknown benchmark 'chexpert'" in result.output
