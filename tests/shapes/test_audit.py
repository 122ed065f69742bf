"""The synthesizer audit: instructions classified by the world's phrasings, precise answers
checked against each domain image's facts."""
import json

from adamllm.domains.toyshapes import truth_triplets
from adamllm.domains.toyshapes.audit import UNRECOGNIZED, audit_triplets, classify, is_true


def test_classify_reads_families_asked_words_and_options():
    assert classify("What colour is the shape?") == ("colour", {})
    assert classify("<image>\nIs there a hexagon in the image?") == ("has_kind", {"x": "hexagon"})
    assert classify("Are the shapes blue?") == ("has_colour", {"x": "blue"})
    assert classify("Are the shapes small or large?") == ("size", {})  # not a yes/no colour question
    choice = "Which shape is in the image?\nA. star\nB. coin\nC. cross\nD. tile\nAnswer with the option's letter."
    assert classify(choice) == ("choose_kind", {"options": {"A": "star", "B": "coin", "C": "cross", "D": "tile"}})
    assert classify("Which shape is in the image?\nA. star\nB. coin")[0] == UNRECOGNIZED  # options cut short
    assert classify("Tell me a story.") == (UNRECOGNIZED, {})
    # another synthesizer's wording of an open question, by keyword
    assert classify("Looking at the image, what is the colour of the diamond?") == ("colour", {"loose": True})
    assert classify("Identify the number of hexagons.") == ("count", {"loose": True})
    assert classify("What is the main object shown?") == ("kind", {"loose": True})


def test_precise_answers_are_checked_against_the_facts():
    facts = {"kind": "cross", "colour": "blue", "count": 2, "size": "small", "background": "navy dotted",
             "position": None}
    assert is_true("kind", {}, "crosses", facts) and is_true("kind", {}, "Cross.", facts)
    assert not is_true("kind", {}, "square", facts)
    assert is_true("count", {}, "two", facts) and is_true("count", {}, "2", facts)
    assert is_true("has_kind", {"x": "star"}, "No.", facts)
    assert not is_true("has_kind", {"x": "crosses"}, "no", facts)
    assert is_true("has_colour", {"x": "blue"}, "yes", facts)
    options = {"options": {"A": "star", "B": "cross", "C": "coin", "D": "tile"}}
    assert is_true("choose_kind", options, "B. cross", facts) and is_true("choose_kind", options, "cross", facts)
    assert not is_true("choose_kind", options, "A", facts)


def test_truth_triplets_are_all_true_and_wrong_ones_are_counted(fast_world):
    truth = truth_triplets(fast_world)
    audit = audit_triplets(fast_world, truth)
    assert audit["fact_accuracy"] == 100.0 and audit["triplets"] == audit["pairs"] == 160
    assert audit["unrecognized"] == 0 and audit["families_covered"] >= 7
    facts = {r["id"]: r for r in map(json.loads, fast_world.facts.read_text().splitlines())}
    wrong = [{**t, "precise": "square"} for t in truth if t["family"] == "kind"]
    odd = [{**truth[0], "instruction": "Write a poem about it."}]
    audit = audit_triplets(fast_world, wrong + odd)
    assert audit["true"] == 0 and audit["unrecognized"] == 1
    assert audit["families"]["kind"] == {"n": len(wrong), "true": 0, "accuracy": 0.0}
    assert audit["distinct_instructions"] == len({t["instruction"] for t in wrong}) + 1
    assert all(t["id"] in facts for t in wrong)


def test_a_missing_triplets_file_audits_as_empty(fast_world, tmp_path):
    audit = audit_triplets(fast_world, tmp_path / "none.jsonl")
    assert audit["triplets"] == 0 and audit["fact_accuracy"] == 0.0 and audit["families"] == {}
