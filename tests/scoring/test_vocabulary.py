"""Vocabulary matching and the Nutrition5K recall / FoodSeg103 F1 averages."""
import pytest

from adamllm.domains.scoring import get_scorer, score_records
from adamllm.domains.scoring.vocabulary import (Vocabulary, food101_classes, foodseg103_vocab,
                                                nutrition5k_vocab, sample_f1, sample_recall)


def test_shipped_vocabularies():
    assert len(food101_classes()) == 101
    assert food101_classes()[0] == "apple pie" and food101_classes()[100] == "waffles"
    seg = foodseg103_vocab().name_to_id
    assert len(seg) == 102 and "background" not in seg and "other ingredients" not in seg
    assert seg["french beans"] == 96  # "French beans" in the file: names are lower-cased
    # "deprecated" sits at 230, 452, 457 and 469 in Nutrition5K: the last id wins.
    assert nutrition5k_vocab().name_to_id["deprecated"] == 469


def test_longest_first_with_deletion():
    seg = foodseg103_vocab()
    # "egg tart" (2) is taken first and deleted, so "egg" (24) is not counted too.
    assert seg.find("An EGG TART", word_boundary=False) == {2}
    assert seg.find("An EGG TART", word_boundary=True) == {2}
    assert seg.find("egg tart and an egg") == {2, 24}


def test_substring_vs_word_boundary():
    vocab = Vocabulary("toy", [("egg", 1), ("tea", 2)])
    assert vocab.find("eggplant in steam") == {1, 2}
    assert vocab.find("eggplant in steam", word_boundary=True) == set()
    assert vocab.find("egg, tea.", word_boundary=True) == {1, 2}


def test_legacy_deletion_can_glue_neighbours():
    vocab = Vocabulary("toy", [("egg tart", 1), ("rice", 2)])
    # Legacy deletes "egg tart" outright: "ri" + "ce" becomes "rice"; strict leaves a space.
    assert vocab.find("riegg tartce") == {1, 2}
    assert vocab.find("ri egg tart ce", word_boundary=True) == {1}


def test_labels():
    vocab = nutrition5k_vocab()
    assert vocab.label_ids("potatoes, bacon") == vocab.label_ids(["Potatoes", "bacon"]) == {3, 4}
    assert vocab.label_ids([]) == set()
    with pytest.raises(ValueError, match="not in the Nutrition5K vocabulary"):
        vocab.label_ids(["unobtainium"])
    with pytest.raises(ValueError, match="FoodSeg103"):
        foodseg103_vocab().label_ids(["background"])  # id 0 is outside the metric


def test_zero_division_is_one():
    assert sample_recall(set(), set()) == 1.0
    assert sample_recall({5}, set()) == 1.0
    assert sample_f1(set(), set()) == 1.0
    assert sample_f1({5}, set()) == 0.0
    assert sample_f1(set(), {5}) == 0.0


FOODSEG = [
    # "french fries" (3) then "egg tart" (2) deleted; "egg" not counted. F1 = 1.
    {"prediction": "An egg tart with french fries", "label": ["egg tart", "french fries"]},
    # legacy: pineapple (40), rice (66), and "tea" (16) inside "steamed"; gold {66, 68}.
    #   F1 = 2*1 / (3 + 2) = 0.4.  strict: {40, 66} -> 2*1 / (2 + 2) = 0.5.
    {"prediction": "Steamed rice and pineapple", "label": ["rice", "tofu"]},
]
# An empty label has nothing to score against (it used to score 1 by zero-division): not scored.
EMPTY_LABEL = {"prediction": "Nothing recognisable", "label": []}


def test_foodseg103_f1():
    legacy = get_scorer("foodseg103", "legacy")
    assert [legacy.score_sample(r).value for r in FOODSEG] == [1.0, 0.4]
    strict = get_scorer("foodseg103", "strict")
    assert [strict.score_sample(r).value for r in FOODSEG] == [1.0, 0.5]
    # (1 + 0.4) / 2 = 0.7 ; (1 + 0.5) / 2 = 0.75
    assert score_records("foodseg103", FOODSEG) == {"f1": pytest.approx(70.0), "n_f1": 2}
    assert score_records("foodseg103", FOODSEG, "strict")["f1"] == pytest.approx(75.0)
    with pytest.raises(ValueError, match="label must be a non-empty list of names"):
        legacy.score_sample(EMPTY_LABEL)


NUTRITION = [
    # found bacon (3), potatoes (4) and, legacy only, "oil" (554) inside "boiled"; recall 2/2 = 1.
    {"prediction": "Boiled potatoes with bacon", "label": ["potatoes", "bacon"]},
    # "scrambled eggs" (7) deleted before "eggs"; gold {7, toast}: recall 1/2.
    {"prediction": "Scrambled eggs", "label": "scrambled eggs, toast"},
    # "cottage cheese" (0) found ("cheese" deleted with it); gold {0, 1, 3}: recall 1/3.
    {"prediction": "Some cottage cheese", "label": ["cottage cheese", "strawberries", "bacon"]},
]


def test_nutrition5k_recall():
    legacy = get_scorer("nutrition5k", "legacy")
    values = [legacy.score_sample(r).value for r in NUTRITION]
    assert values == pytest.approx([1.0, 0.5, 1 / 3])
    # (1 + 1/2 + 1/3) / 3 = 11/18 -> 61.11...
    assert score_records("nutrition5k", NUTRITION) == {"recall": pytest.approx(1100 / 18),
                                                       "n_recall": 3}
    # "oil" only inside "boiled": legacy finds it (recall 2/2), strict does not (1/2).
    record = {"prediction": "boiled potatoes", "label": ["potatoes", "oil"]}
    assert legacy.score_sample(record).value == 1.0
    assert get_scorer("nutrition5k", "strict").score_sample(record).value == 0.5


def test_empty_prediction():
    record = {"prediction": "", "label": ["rice"]}
    for scorer in ("legacy", "strict"):
        assert get_scorer("foodseg103", scorer).score_sample(record).value == 0.0
        assert get_scorer("nutrition5k", scorer).score_sample(record).value == 0.0
