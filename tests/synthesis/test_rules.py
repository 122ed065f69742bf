"""The ``rules`` synthesizer: exact triplets for hand-written captions, None when no rule applies,
determinism, seed variation, stats, and the synthesizer contract.

The expected strings below were written from the frames in ``adamllm.plugins.synthesis.rules``
(``QUESTIONS`` / ``EXPLANATIONS``); the frame indices they use, for seed 7, are checked against
the documented pick (first 8 bytes of sha256("seed/id/what"), big-endian, mod n) in
``test_the_picks_follow_the_documented_hash``.
"""
import hashlib
from types import SimpleNamespace

import pytest

from adamllm.plugins.synthesis.rules import EXPLANATIONS, QUESTIONS, RulesConfig, RulesSynthesizer, facts
from adamllm.records import ImageCaptionPair, TaskTriplet
from adamllm.testing.stage_contract import SynthesizerContract

SEED = 7


def ctx(seed=SEED):
    return SimpleNamespace(config=SimpleNamespace(seed=seed))


def pair(pair_id, caption, image="/data/img.png"):
    return ImageCaptionPair(id=pair_id, image=image, caption=caption)


# id, caption, expected triplet (seed 7); each caption but the last has exactly one candidate fact
CASES = [
    ("colour", "Cells stained purple nuclei visible.", {
        "instruction": "Identify the colour of the nuclei.",                                     # QUESTIONS[4]
        "precise": "purple",
        "informative": 'The caption says: "Cells stained purple nuclei visible." So the colour of the nuclei '
                       'is purple.',                                                             # EXPLANATIONS[0]
        "rule": "colour"}),
    ("count", "There are 12 eggs inside cartons here.", {
        "instruction": "What would you say the number of eggs is?",                              # QUESTIONS[6]
        "precise": "12",
        "informative": 'The image is described as "There are 12 eggs inside cartons here"; therefore the '
                       'number of eggs is 12.',                                                  # EXPLANATIONS[2]
        "rule": "count"}),
    ("object", "Look closely: an old lighthouse stands tall.", {
        "instruction": "From what you can see, what is the main object shown?",                  # QUESTIONS[9]
        "precise": "lighthouse",
        "informative": 'According to the description, "Look closely: an old lighthouse stands tall", so the '
                       'main object shown is a lighthouse.',                                     # EXPLANATIONS[1]
        "rule": "object"}),
    ("subject", "Fresh bread sits by itself.", {
        "instruction": "Can you tell me the main subject described?",                            # QUESTIONS[1]
        "precise": "Fresh bread",
        "informative": 'The image is described as "Fresh bread sits by itself"; therefore the main subject '
                       'described is Fresh bread.',                                              # EXPLANATIONS[2]
        "rule": "subject"}),
    # four candidates (colour red, colour white, object square, subject "a red square"): fact 3 is picked
    ("many", "A red square on a white background.", {
        "instruction": "Tell me the main subject described.",                                    # QUESTIONS[8]
        "precise": "a red square",
        "informative": 'The caption says: "A red square on a white background." So the main subject described '
                       'is a red square.',                                                       # EXPLANATIONS[0]
        "rule": "subject"}),
]
PICKS = {"colour": (0, 4, 0), "count": (0, 6, 2), "object": (0, 9, 1), "subject": (0, 1, 2), "many": (3, 8, 0)}


def test_the_picks_follow_the_documented_hash():
    def pick(pair_id, what, n):
        return int.from_bytes(hashlib.sha256(f"{SEED}/{pair_id}/{what}".encode()).digest()[:8], "big") % n

    for pair_id, caption, _ in CASES:
        sizes = (len(facts(caption)), len(QUESTIONS), len(EXPLANATIONS))
        assert tuple(pick(pair_id, w, n) for w, n in zip(("fact", "question", "explanation"), sizes)) == PICKS[pair_id]
    assert len(QUESTIONS) >= 10 and len(set(QUESTIONS)) == len(QUESTIONS)


def test_the_candidate_facts_of_a_caption():
    assert [(f.rule, f.precise) for f in facts("A red square on a white background.")] == \
        [("colour", "red"), ("colour", "white"), ("object", "square"), ("subject", "a red square")]
    # adjectives between a count and its noun are skipped; units are no count; "image" is no object
    assert [(f.rule, f.q, f.precise) for f in facts("The image shows three round cells. Bake for 20 minutes.")] == \
        [("count", "the number of cells", "three")]


# recipe lines and the count facts they hold: a fraction, mixed number, decimal or range is an
# amount as written, not a number of things, and kitchen measures are units
RECIPE_LINES = [
    ("1/2 teaspoon salt", []),
    ("1 1/2 cups flour", []),
    ("1-1/2 cups rice", []),
    ("2 eggs", [("the number of eggs", "2")]),
    ("3 cloves garlic, minced", [("the number of cloves", "3")]),
    ("½ cup sugar", []),
    ("1½ cups milk", []),
    ("0.5 kg beef", []),
    ("2-3 large eggs", []),
    ("2 to 3 eggs", []),
    ("2 or 3 potatoes, peeled", []),
    ("1/2 dozen eggs", []),
    ("2 tablespoons olive oil", []),
    ("4 ounces cream cheese, softened", []),
    ("4 medium carrots, thinly sliced", [("the number of carrots", "4")]),
    ('Spray a 9"x13" pan with cooking spray.', []),
    ("2 (14.5 ounce) cans diced tomatoes", []),
    ("Bake for 20-25 minutes until 12 muffins are golden.", [("the number of muffins", "12")]),
]


@pytest.mark.parametrize("line,expected", RECIPE_LINES, ids=[line for line, _ in RECIPE_LINES])
def test_recipe_quantities_are_not_read_as_counts(line, expected):
    assert [(f.q, f.precise) for f in facts(line) if f.rule == "count"] == expected


def test_a_recipe_caption_asks_only_for_whole_counts():
    caption = ("Garlic butter pancakes\nIngredients:\n1/2 teaspoon salt\n1 1/2 cups flour\n2 eggs\n"
               "3 cloves garlic, minced\n½ cup sugar\n1 ½ tablespoons butter")
    assert [(f.q, f.precise) for f in facts(caption) if f.rule == "count"] == \
        [("the number of eggs", "2"), ("the number of cloves", "3")]
    triplets = RulesSynthesizer().synthesize([pair(f"r{i}", caption) for i in range(60)], ctx())
    counts = [t for t in triplets if t.rule == "count"]
    assert counts and all(("the number of eggs" in t.instruction and t.precise == "2")
                          or ("the number of cloves" in t.instruction and t.precise == "3") for t in counts)
    assert all(t.informative.endswith(f"is {t.precise}.") for t in counts)


@pytest.mark.parametrize("pair_id,caption,expected", CASES, ids=[c[0] for c in CASES])
def test_exact_triplets_for_hand_written_captions(pair_id, caption, expected):
    synth = RulesSynthesizer(RulesConfig())
    [triplet] = synth.synthesize([pair(pair_id, caption)], ctx())
    assert isinstance(triplet, TaskTriplet)
    assert triplet.model_dump() == {"id": pair_id, "image": "/data/img.png", **expected}
    assert triplet.informative.rstrip(".").endswith(triplet.precise)
    assert synth.stats["by_rule"][expected["rule"]] == 1


def test_the_config_seed_overrides_the_runs():
    synth = RulesSynthesizer(RulesConfig(seed=SEED))
    [triplet] = synth.synthesize([pair("colour", CASES[0][1])], ctx(seed=12345))
    assert triplet.instruction == CASES[0][2]["instruction"]


def test_a_long_sentence_is_quoted_as_a_window_around_the_fact():
    before = " ".join(f"x{c}{c}" for c in "abcdefghijklmnopqrst")
    after = " ".join(f"y{c}{c}" for c in "abcdefghijklmnopqrst")
    [triplet] = RulesSynthesizer().synthesize([pair("long", f"Here {before} are two dogs {after}.")], ctx())
    assert triplet.rule == "count" and triplet.precise == "two"
    assert triplet.informative == ('The image is described as "... xjj xkk xll xmm xnn xoo xpp xqq xrr xss xtt are '
                                   'two dogs yaa ybb ycc ydd yee yff ygg yhh yii yjj"; therefore the number of dogs '
                                   'is two.')


def test_no_triplet_when_no_rule_applies_or_the_caption_is_too_short():
    synth = RulesSynthesizer()
    results = synth.synthesize([pair("none", "Lorem ipsum dolor amet consectetur."), pair("short", "Red square."),
                                pair("ok", CASES[0][1])], ctx())
    assert results[0] is None and results[1] is None and results[2].id == "ok"
    assert synth.stats == {"by_rule": {"colour": 1, "count": 0, "object": 0, "subject": 0},
                           "no_rule": 1, "too_short": 1}
    assert RulesSynthesizer(RulesConfig(min_caption_words=1)).synthesize([pair("short", "Red square.")], ctx())[0]


def test_options_are_checked():
    with pytest.raises(ValueError):
        RulesConfig(temperature=0.5)
    with pytest.raises(ValueError):
        RulesConfig(batch_size=0)
    assert RulesSynthesizer().batch_size == 64


COLOURS = ["red", "green", "blue", "yellow", "purple", "white"]
SHAPES = ["square", "circle", "triangle", "star"]
MANY = [pair(f"p{i}", f"A {COLOURS[i % 6]} {SHAPES[i % 4]} with {i % 5 + 2} dots on a plain background.")
        for i in range(40)]


def test_same_pairs_and_seed_give_identical_triplets_in_any_batching():
    first = RulesSynthesizer().synthesize(MANY, ctx())
    again = []
    for start in range(0, len(MANY), 7):
        again += RulesSynthesizer().synthesize(list(reversed(MANY[start:start + 7])), ctx())[::-1]
    assert [t.model_dump() for t in first] == [t.model_dump() for t in again]
    assert all(t is not None for t in first)
    assert len({t.rule for t in first}) == 4  # every rule fires somewhere


def test_another_seed_picks_other_templates():
    a = RulesSynthesizer().synthesize(MANY, ctx(seed=0))
    b = RulesSynthesizer().synthesize(MANY, ctx(seed=1))
    assert [t.id for t in a] == [t.id for t in b]
    differing = sum(x.instruction != y.instruction for x, y in zip(a, b))
    assert differing >= len(MANY) // 2


class TestRulesContract(SynthesizerContract):
    component = "rules"
    options = {"batch_size": 2}

    def test_every_fixture_pair_gets_a_triplet_naming_its_rule(self, built, stage_context):
        pairs = self.pairs(stage_context)
        results = built.synthesize(pairs, stage_context)
        assert [t.id for t in results] == [p.id for p in pairs]
        assert all(t.rule in ("colour", "count", "object", "subject") and t.image == p.image
                   for t, p in zip(results, pairs))
