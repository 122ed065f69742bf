"""Agreement with human labels (``gold: FILE``): numbers computed by hand, and bad gold files."""
import json

import pytest

from adamllm.plugins.filtering.gold import agreement, read_gold
from adamllm.plugins.filtering.simple import KeepAllConfig, KeepAllFilter
from adamllm.records import Verdict
from adamllm.stages import StageError

GOLD = [("g1", "yes"), ("g2", "Yes"), ("g3", "no"), ("g4", "open"), ("g5", "yes"), ("g6", "NO "), ("g7", "open")]
VERDICTS = [("g1", "yes"), ("g2", "no"), ("g3", "no"), ("g4", "yes"), ("g5", "other"), ("g6", "no"), ("x9", "yes")]


def write_gold(path, rows, array=False):
    records = [{"id": i, "label": label, "instruction": "Q?"} for i, label in rows]
    if array:
        path.write_text(json.dumps(records, indent=2))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("array", [False, True])
def test_agreement_by_label_and_confusion_table(tmp_path, array):
    gold = read_gold(write_gold(tmp_path / ("gold.json" if array else "gold.jsonl"), GOLD, array))
    assert gold == {"g1": "yes", "g2": "yes", "g3": "no", "g4": "open", "g5": "yes", "g6": "no", "g7": "open"}
    result = agreement(gold, [Verdict(id=i, verdict=v) for i, v in VERDICTS])
    # g7 has no verdict, x9 no gold label; of the 6 compared, g1, g3 and g6 agree
    assert result == {
        "labels": 7, "compared": 6, "missing": 1, "agreement": 0.5,
        "by_label": {"yes": {"n": 3, "agree": 1, "rate": 0.3333},
                     "no": {"n": 2, "agree": 2, "rate": 1.0},
                     "open": {"n": 1, "agree": 0, "rate": 0.0}},
        "confusion": {"yes": {"yes": 1, "no": 1, "open": 0, "other": 1},
                      "no": {"yes": 0, "no": 2, "open": 0, "other": 0},
                      "open": {"yes": 1, "no": 0, "open": 0, "other": 0}},
    }


def test_no_overlap_gives_no_rate(tmp_path):
    gold = read_gold(write_gold(tmp_path / "gold.jsonl", [("a", "yes")]))
    result = agreement(gold, [Verdict(id="b", verdict="yes")])
    assert (result["compared"], result["missing"], result["agreement"]) == (0, 1, None)
    assert result["by_label"]["yes"] == {"n": 0, "agree": 0, "rate": None}


def test_a_filter_summarizes_against_its_gold_file(tmp_path):
    path = write_gold(tmp_path / "gold.jsonl", GOLD)
    keep_all = KeepAllFilter(KeepAllConfig(gold=str(path)))
    summary = keep_all.summarize(keep_all.judge([_triplet(i) for i, _ in GOLD[:4]], ctx=None))
    assert summary["gold"]["file"] == str(path)
    assert summary["gold"]["compared"] == 4 and summary["gold"]["missing"] == 3
    assert summary["gold"]["agreement"] == 0.5  # g1, g2 (gold yes) of g1..g4
    assert KeepAllFilter(KeepAllConfig()).summarize([]) == {}


def _triplet(i):
    from adamllm.records import TaskTriplet

    return TaskTriplet(id=i, image="x.png", instruction="Q?", precise="a", informative="b")


def test_bad_label_names_file_and_line(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text('{"id": "a", "label": "yes"}\n{"id": "b", "label": "no"}\n{"id": "c", "label": "maybe"}\n')
    with pytest.raises(StageError, match=rf"{path}:3: .*label must be one of yes, no, open, got 'maybe'"):
        read_gold(path)


def test_repeated_id_missing_field_and_empty_file(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text('{"id": "a", "label": "yes"}\n{"id": "a", "label": "no"}\n')
    with pytest.raises(StageError, match=rf"{path}:2: gold id 'a' appears more than once"):
        read_gold(path)
    path.write_text('{"id": "a"}\n')
    with pytest.raises(StageError, match=rf"{path}:1: .*label"):
        read_gold(path)
    path.write_text("\n")
    with pytest.raises(StageError, match="holds no labels"):
        read_gold(path)
    with pytest.raises(StageError, match="no such file"):
        read_gold(tmp_path / "missing.jsonl")


def test_a_missing_gold_file_fails_config_validation(tmp_path):
    from adamllm.config import ConfigError, validate_config
    from adamllm.registry import PluginManager

    with pytest.raises(ConfigError, match="no such gold file"):
        validate_config({"output_dir": "out", "filter": {"type": "lexical", "gold": "nope.jsonl"}},
                        PluginManager(strict=True), base_dir=tmp_path)
