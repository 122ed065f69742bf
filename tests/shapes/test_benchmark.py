"""The toy benchmarks load through the registry and score hand-made answers as computed by hand."""
import pytest

from adamllm.domains.toyshapes import text_only_baseline
from adamllm.registry import get_plugin_manager


def build(name, source):
    spec = get_plugin_manager().spec("benchmark", name)
    return spec.build(spec.load_config_model()(source=str(source)))


def scores(bench, predictions):
    """{scorer: aggregate} for (sample, prediction) pairs, with both scorers."""
    out = {}
    for scorer in ("legacy", "strict"):
        judge = bench.get_scorer(scorer)
        out[scorer] = judge.aggregate([judge.score_sample(s.record(p), i) for i, (s, p) in enumerate(predictions)])
    return out


def test_vqa_benchmark_loads_and_scores_hand_made_answers(fast_world):
    bench = build("toyshapes_vqa", fast_world.benchmark_vqa)
    samples = bench.samples()
    assert len(samples) == 80 and bench.max_new_tokens == 32 and bench.domain == "toyshapes"
    opens = [s for s in samples if s.fields["answer_type"] == "OPEN"]
    yes = next(s for s in samples if s.fields["answer_type"] == "CLOSED" and s.label == "yes")
    no = next(s for s in samples if s.fields["answer_type"] == "CLOSED" and s.label == "no")
    assert len(opens) == 48
    answers = [
        (opens[0], f"{opens[0].label} {opens[0].label}"),  # legacy recall 1 (repeats count), strict exact 0
        (opens[1], "blue"),                                # no domain shape is blue: 0 and 0
        (yes, "yes"),                                      # 1 and 1
        (no, "nothing"),                                   # legacy: "no" is a substring of "nothing": 1; strict 0
    ]
    assert scores(bench, answers) == {
        "legacy": {"open_recall": 50.0, "n_open_recall": 2, "closed_accuracy": 100.0, "n_closed_accuracy": 2},
        "strict": {"open_recall": 0.0, "n_open_recall": 2, "closed_accuracy": 50.0, "n_closed_accuracy": 2},
    }


def test_choice_benchmark_loads_and_scores_hand_made_answers(fast_world):
    bench = build("toyshapes_choice", fast_world.benchmark_choice)
    samples = bench.samples()
    assert len(samples) == 20 and all(s.label in "ABCD" for s in samples)
    first, second = samples[:2]
    wrong = next(letter for letter in "ABCD" if letter != second.label)
    answers = [(first, f"({first.label})"), (second, f"It is {second.fields[wrong]}.")]  # right letter; a wrong option's text
    assert scores(bench, answers) == {"legacy": {"accuracy": 50.0, "n_accuracy": 2},
                                      "strict": {"accuracy": 50.0, "n_accuracy": 2}}


def test_a_missing_world_is_a_clear_config_error(tmp_path):
    spec = get_plugin_manager().spec("benchmark", "toyshapes_vqa")
    with pytest.raises(ValueError, match="generate the toy world first"):
        spec.load_config_model()(source=str(tmp_path / "nowhere.jsonl"))


def test_text_only_baseline_is_at_chance(fast_world):
    # answers are balanced per family and phrasing (world.slot_plan), so the best answer per
    # (family, phrasing) is right at chance: colour and kind 4 of 16 each, count 6 of 16 (16 is
    # not a multiple of 3), yes/no 16 of 32, choice 3 of 10 per family (letters A2 B2 C3 D3)
    result = text_only_baseline(fast_world)
    for scorer in ("legacy", "strict"):
        assert result["vqa.jsonl"][scorer]["open_recall"] == pytest.approx(100 * 14 / 48)
        assert result["vqa.jsonl"][scorer]["closed_accuracy"] == 50.0
        assert result["choice.jsonl"][scorer]["accuracy"] == 30.0


def test_domain_declares_its_source_and_default_benchmarks():
    spec = get_plugin_manager().spec("domain", "toyshapes")
    assert spec.benchmarks == ("toyshapes_vqa", "toyshapes_choice")
    assert spec.sources[0].location == "world/domain/image_caption_pairs.json"
    assert [b["source"] for b in spec.defaults["benchmarks"]] == ["world/benchmark/vqa.jsonl",
                                                                  "world/benchmark/choice.jsonl"]
