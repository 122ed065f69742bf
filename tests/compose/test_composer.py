"""The ``adamllm`` composer on hand-made pairs, triplets and verdicts: the branches, the seeded
choices, the two-stage records, each ablation switch and the option checks."""
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from adamllm.plugins.compose.composer import AdamllmComposer, ComposerConfig
from adamllm.plugins.compose.templates import CAPTION_INSTRUCTIONS, POOLS
from adamllm.records import ImageCaptionPair, TaskTriplet, Verdict

#: id -> (informative, precise, branch under legacy, branch under words)
TRIPLETS = {
    "one": ("The lesion has sharp borders. This is also visible on the left.", "Benign",
            "informative_only", "chain_of_thought"),
    "two": ("The borders are sharp. Therefore, it is benign.", "The answer is benign",
            "informative_plus_precise", "informative_only"),
    "three": ("The cells are round and evenly spaced, so", "Normal tissue.", "chain_of_thought", "informative_only"),
}


def ctx(seed=0):
    return SimpleNamespace(config=SimpleNamespace(seed=seed))


def pair(pid, instruction="Describe the slide."):
    return ImageCaptionPair(id=pid, image=f"/data/{pid}.png", caption=f"A slide, {pid}.", instruction=instruction)


def triplet(pid, informative="It is round.", precise="Round"):
    return TaskTriplet(id=pid, image=f"/data/{pid}.png", instruction=f"What is seen in {pid}?",
                       precise=precise, informative=informative)


def compose(options=None, pairs=(), triplets=None, verdicts=None, seed=0):
    composer = AdamllmComposer(ComposerConfig(**(options or {})))
    examples = list(composer.compose(iter(pairs), triplets or {}, verdicts or {}, ctx(seed)))
    return [e.model_dump(mode="json", exclude_none=True) for e in examples], composer.stats


def filled(pool, direction, **fields):
    return {template.fill(**fields) for template in POOLS[pool][direction]}


def turns(example):
    messages = example["messages"]
    return [(messages[i]["content"], messages[i + 1]["content"]) for i in range(0, len(messages), 2)]


def split(example, pid):
    """(caption turn, task turn) of a single-stage example, whichever order, placeholder removed."""
    caption = ("Describe the slide.", f"A slide, {pid}.")
    found = [(u.removeprefix("<image>"), a) for u, a in turns(example)]
    assert caption in found and len(found) == 2
    return caption, next(t for t in found if t != caption)


@pytest.mark.parametrize("indicators", ["legacy", "words"])
def test_each_branch_gives_its_response(indicators):
    pairs = [pair(pid) for pid in TRIPLETS]
    triplets = {pid: triplet(pid, inf, pre) for pid, (inf, pre, _, _) in TRIPLETS.items()}
    verdicts = {pid: Verdict(id=pid, verdict="yes") for pid in TRIPLETS}
    examples, stats = compose({"indicators": indicators, "inverted_share": 0.0}, pairs, triplets, verdicts)
    assert [e["id"] for e in examples] == list(TRIPLETS)
    for example, (pid, (informative, precise, legacy, words)) in zip(examples, TRIPLETS.items()):
        _, task = split(example, pid)
        question = f"What is seen in {pid}?"
        expected_branch = legacy if indicators == "legacy" else words
        if expected_branch == "informative_only":
            assert task in filled("qa", "forward", question=question, answer=informative)
        elif expected_branch == "informative_plus_precise":
            assert task in filled("qa", "forward", question=question, answer=informative + " " + precise)
        else:
            assert task in filled("cot", "forward", question=question, reasoning=informative, answer=precise)
    expected = [legacy if indicators == "legacy" else words for legacy, words in
                ((v[2], v[3]) for v in TRIPLETS.values())]
    for name in ("informative_only", "informative_plus_precise", "chain_of_thought"):
        assert stats[name] == expected.count(name)
    assert stats["with_task"] == 3 and stats["inverted"] == 0


def test_words_variant_differs_from_legacy_only_where_the_tests_differ():
    pairs = [pair(pid) for pid in TRIPLETS]
    triplets = {pid: triplet(pid, inf, pre) for pid, (inf, pre, _, _) in TRIPLETS.items()}
    verdicts = {pid: Verdict(id=pid, verdict="yes") for pid in TRIPLETS}
    legacy, legacy_stats = compose({}, pairs, triplets, verdicts)
    words, words_stats = compose({"indicators": "words"}, pairs, triplets, verdicts)
    assert (legacy_stats["informative_only"], legacy_stats["informative_plus_precise"],
            legacy_stats["chain_of_thought"]) == (1, 1, 1)
    assert (words_stats["informative_only"], words_stats["informative_plus_precise"],
            words_stats["chain_of_thought"]) == (2, 0, 1)
    assert all(a != b for a, b in zip(legacy, words))  # every triplet here changes branch
    same = {"x": triplet("x", "It is round, so it is a cell.", "A cell")}  # both tests: branch 1
    assert compose({}, [pair("x")], same, {"x": Verdict(id="x", verdict="yes")})[0] == \
        compose({"indicators": "words"}, [pair("x")], same, {"x": Verdict(id="x", verdict="yes")})[0]


def test_pinned_example():
    """One composed record, written out: a change of the draws or the pools shows here."""
    examples, _ = compose({}, [pair("p7")], {"p7": triplet("p7")}, {"p7": Verdict(id="p7", verdict="yes")}, seed=3)
    assert examples == [{
        "messages": [
            {"role": "user", "content": "<image>Describe the slide."},
            {"role": "assistant", "content": "A slide, p7."},
            {"role": "user", "content": "What is seen in p7?\nWalk me through it."},
            {"role": "assistant", "content": "It is round.\nConclusion: Round"},
        ],
        "images": ["/data/p7.png"], "id": "p7"}]


def test_verdicts_and_missing_triplets():
    pids = ["yes", "no", "open", "other", "unjudged", "none"]
    pairs = [pair(pid) for pid in pids]
    triplets = {pid: triplet(pid) for pid in pids if pid != "none"}
    verdicts = {pid: Verdict(id=pid, verdict=pid) for pid in ("yes", "no", "open", "other")}
    examples, stats = compose({}, pairs, triplets, verdicts)
    assert [e["id"] for e in examples] == ["yes", "no", "open", "other", "unjudged"]  # no triplet: dropped
    assert len(examples[0]["messages"]) == 4
    for example in examples[1:]:  # not kept: the caption turn only
        assert example["messages"] == [{"role": "user", "content": "<image>Describe the slide."},
                                       {"role": "assistant", "content": f"A slide, {example['id']}."}]
    assert stats["images"] == 6 and stats["with_task"] == 1 and stats["caption_only"] == 4
    assert stats["dropped_no_triplet"] == 1 and stats["not_kept"] == 4
    assert stats["not_kept_by_verdict"] == {"no": 1, "open": 1, "other": 1, "no_verdict": 1}


def test_image_placeholder_opens_the_first_user_turn_in_either_order():
    pids = [f"p{i}" for i in range(40)]
    pairs = [pair(pid) for pid in pids]
    triplets = {pid: triplet(pid) for pid in pids}
    verdicts = {pid: Verdict(id=pid, verdict="yes") for pid in pids}
    examples, stats = compose({}, pairs, triplets, verdicts)
    caption_first = 0
    for example in examples:
        users = [m["content"] for m in example["messages"] if m["role"] == "user"]
        assert users[0].startswith("<image>") and sum(u.count("<image>") for u in users) == 1
        caption_first += users[0] == "<image>Describe the slide."
    assert 0 < caption_first < 40 and stats["task_first"] == 40 - caption_first
    for order, first in (("caption_first", "Describe the slide."), ("task_first", None)):
        fixed, fixed_stats = compose({"turn_order": order}, pairs, triplets, verdicts)
        firsts = [e["messages"][0]["content"] for e in fixed]
        if first:
            assert all(f == "<image>" + first for f in firsts) and fixed_stats["task_first"] == 0
        else:
            assert all(f != "<image>Describe the slide." for f in firsts) and fixed_stats["task_first"] == 40


def test_choices_follow_the_seed_and_not_the_other_records():
    pids = [f"p{i}" for i in range(30)]
    pairs = [pair(pid, instruction=None) for pid in pids]
    triplets = {pid: triplet(pid) for pid in pids}
    verdicts = {pid: Verdict(id=pid, verdict="yes") for pid in pids}
    first, _ = compose({}, pairs, triplets, verdicts, seed=0)
    again, _ = compose({}, pairs, triplets, verdicts, seed=0)
    other, _ = compose({}, pairs, triplets, verdicts, seed=1)
    assert first == again
    assert sum(a != b for a, b in zip(first, other)) >= 20  # templates, order and caption requests redrawn
    # a record's choices do not depend on the other records or their order
    alone, _ = compose({}, [pairs[7]], triplets, verdicts, seed=0)
    reversed_, _ = compose({}, pairs[::-1], triplets, verdicts, seed=0)
    assert alone == [first[7]] and reversed_ == first[::-1]
    # pairs without their own instruction get one of the default requests, varied by record
    requests = {u.removeprefix("<image>") for e in first for u, _ in turns(e)
                if u.removeprefix("<image>") in CAPTION_INSTRUCTIONS}
    assert len(requests) >= 8


def test_inverted_templates_ask_for_the_question():
    pids = [f"p{i}" for i in range(20)]
    pairs = [pair(pid) for pid in pids]
    triplets = {pid: triplet(pid, "It is round, so it is a cell.", "A cell") for pid in pids}
    verdicts = {pid: Verdict(id=pid, verdict="yes") for pid in pids}
    examples, stats = compose({"inverted_share": 1.0}, pairs, triplets, verdicts)
    assert stats["inverted"] == 20 and stats["informative_only"] == 20
    for example, pid in zip(examples, pids):
        _, task = split(example, pid)
        assert task in filled("qa", "inverted", question=f"What is seen in {pid}?",
                              answer="It is round, so it is a cell.")
    _, share_stats = compose({"inverted_share": 0.3}, pairs, triplets, verdicts)
    assert 0 < share_stats["inverted"] < 20


def test_two_stage_records():
    pids = ["a", "b", "c"]
    pairs = [pair(pid) for pid in pids]
    triplets = {pid: triplet(pid) for pid in ("a", "b")}
    verdicts = {"a": Verdict(id="a", verdict="yes"), "b": Verdict(id="b", verdict="no")}
    examples, stats = compose({"two_stage": True}, pairs, triplets, verdicts)
    assert [(e["id"], e["stage"]) for e in examples] == [("a/caption", 1), ("a/task", 2), ("b/caption", 1)]
    for example in examples:
        assert len(example["messages"]) == 2 and example["images"] == [f"/data/{example['id'][0]}.png"]
        assert example["messages"][0]["content"].startswith("<image>")
    assert examples[0]["messages"] == [{"role": "user", "content": "<image>Describe the slide."},
                                       {"role": "assistant", "content": "A slide, a."}]
    single, _ = compose({}, pairs, triplets, verdicts)
    _, task = split(single[0], "a")
    assert turns(examples[1]) == [("<image>" + task[0], task[1])]  # the same task turn as single-stage
    assert stats["with_task"] == 1 and stats["caption_only"] == 1 and stats["dropped_no_triplet"] == 1


@pytest.mark.parametrize("mode", ["precise_only", "informative_only"])
def test_no_filter_ablations_keep_every_triplet(mode):
    pids = ["yes", "no", "open"]
    pairs = [pair(pid) for pid in pids]
    informative, precise = "The cells are round and evenly spaced.", "Normal tissue"
    triplets = {pid: triplet(pid, informative, precise) for pid in pids}
    verdicts = {pid: Verdict(id=pid, verdict=pid) for pid in pids}
    examples, stats = compose({"task_answer": mode, "inverted_share": 0.0}, pairs, triplets, verdicts)
    answer = precise if mode == "precise_only" else informative
    for example, pid in zip(examples, pids):
        _, task = split(example, pid)
        assert task in filled("qa", "forward", question=f"What is seen in {pid}?", answer=answer)
    kind = "precise_answer" if mode == "precise_only" else "informative_answer"
    assert stats[kind] == 3 and stats["with_task"] == 3 and stats["chain_of_thought"] == 0
    assert stats["not_kept"] == 0


def test_no_caption_turn_ablation():
    pairs = [pair("a"), pair("b")]
    triplets = {"a": triplet("a"), "b": triplet("b")}
    verdicts = {"a": Verdict(id="a", verdict="yes"), "b": Verdict(id="b", verdict="open")}
    examples, stats = compose({"caption_turn": False}, pairs, triplets, verdicts)
    single, _ = compose({}, pairs, triplets, verdicts)
    _, task = split(single[0], "a")
    assert examples == [{"messages": [{"role": "user", "content": "<image>" + task[0]},
                                      {"role": "assistant", "content": task[1]}],
                         "images": ["/data/a.png"], "id": "a"}]
    assert stats["dropped_not_kept"] == 1 and stats["with_task"] == 1


def test_caption_only_ablation_keeps_every_pair():
    pairs = [pair("a"), pair("b", instruction=None), pair("c")]
    triplets = {"a": triplet("a")}
    verdicts = {"a": Verdict(id="a", verdict="yes")}
    examples, stats = compose({"synthetic_task": False}, pairs, triplets, verdicts)
    assert [e["id"] for e in examples] == ["a", "b", "c"] and all(len(e["messages"]) == 2 for e in examples)
    assert examples[0]["messages"][0]["content"] == "<image>Describe the slide."
    assert examples[1]["messages"][0]["content"].removeprefix("<image>") in CAPTION_INSTRUCTIONS
    assert stats["caption_only"] == 3 and stats["with_task"] == 0 and stats["default_caption_instruction"] == 1


def test_stray_placeholders_are_removed_and_counted():
    pairs = [ImageCaptionPair(id="a", image="/data/a.png", caption="<image>A slide.", instruction="Describe.")]
    triplets = {"a": TaskTriplet(id="a", image="/data/a.png", instruction="<image>What is it?",
                                 precise="Round", informative="It is round.")}
    examples, stats = compose({}, pairs, triplets, {"a": Verdict(id="a", verdict="yes")})
    assert sum(m["content"].count("<image>") for m in examples[0]["messages"]) == 1
    assert stats["placeholders_removed"] == 2


@pytest.mark.parametrize("options, message", [
    ({"caption_turn": False, "synthetic_task": False}, "nothing to train on"),
    ({"two_stage": True, "caption_turn": False}, "two_stage needs the caption turn"),
    ({"two_stage": True, "synthetic_task": False}, "two_stage needs the synthetic task"),
    ({"synthetic_task": False, "task_answer": "precise_only"}, "task_answer set with synthetic_task: false"),
    ({"synthetic_task": False, "indicators": "words"}, "indicators set with synthetic_task: false"),
    ({"task_answer": "informative_only", "indicators": "words"}, "indicators: words has no effect"),
    ({"two_stage": True, "turn_order": "task_first"}, "turn_order: task_first needs both turns"),
    ({"indicators": "substring"}, "Input should be 'legacy' or 'words'"),
    ({"inverted_share": 1.5}, "less than or equal to 1"),
    ({"two_stages": True}, "Extra inputs are not permitted"),
])
def test_invalid_options_are_config_errors(options, message):
    with pytest.raises(ValidationError, match=message):
        ComposerConfig(**options)
