"""Parsing synthesizer continuations: hand-written outputs in the Llama-3 and ChatML formats."""
import pytest

from adamllm.plugins.synthesis.parse import (
    CHATML,
    LLAMA3,
    NO_PAIR,
    PARSE_ERROR,
    TRUNCATED_ONLY,
    UNBALANCED,
    detect,
    pair_triplet,
    parse,
    split_turns,
)
from adamllm.plugins.synthesis.protocol import RELEASED

P, I = RELEASED.precise_hint, RELEASED.informative_hint


def conversation(fmt, turns, end=True, first_open=True):
    """A continuation: the first (user) turn's text comes without a header (already opened)."""
    parts = []
    for k, (role, text) in enumerate(turns):
        head = "" if (k == 0 and first_open) else fmt.header(role)
        parts.append(f"{head}{text}{fmt.end}{fmt.separator}")
    return "".join(parts) + (fmt.end_of_text[0] if end else "")


GOOD = [("user", f"{P}\nWhat colour is the square?"), ("assistant", "Red."),
        ("user", f"{I}\nWhat colour is the square?"),
        ("assistant", "The square fills the frame in a flat red, so the answer is red.")]

FORMATS = pytest.mark.parametrize("fmt", [LLAMA3, CHATML], ids=["llama3", "chatml"])


@FORMATS
def test_exact_triplet(fmt):
    text = conversation(fmt, GOOD)
    turns, truncated = split_turns(text, fmt)
    assert turns == [("user", f"{P}\nWhat colour is the square?"), ("assistant", "Red."),
                     ("user", f"{I}\nWhat colour is the square?"),
                     ("assistant", "The square fills the frame in a flat red, so the answer is red.")]
    assert not truncated
    assert pair_triplet(turns, RELEASED) == (
        ("What colour is the square?", "Red.", "The square fills the frame in a flat red, so the answer is red."), None)


def test_literal_llama3_and_chatml_text():
    llama = ("Answer with a precise response.\nHow many?<|eot_id|>"
             "<|start_header_id|>assistant<|end_header_id|>\n\nTwo.<|eot_id|>"
             "<|start_header_id|>user<|end_header_id|>\n\nAnswer with an informative response.\nHow many?<|eot_id|>"
             "<|start_header_id|>assistant<|end_header_id|>\n\nI count two circles.<|eot_id|><|end_of_text|>junk")
    chatml = ("Answer with a precise response.\nHow many?<|im_end|>\n"
              "<|im_start|>assistant\nTwo.<|im_end|>\n"
              "<|im_start|>user\nAnswer with an informative response.\nHow many?<|im_end|>\n"
              "<|im_start|>assistant\nI count two circles.<|im_end|>\n<|endoftext|><|im_start|>user\nmore")
    for text, fmt in ((llama, LLAMA3), (chatml, CHATML)):
        assert parse(text, fmt, RELEASED) == (("How many?", "Two.", "I count two circles."), None, False)


@FORMATS
def test_truncated_last_turn_is_dropped(fmt):
    text = conversation(fmt, GOOD[:3], end=False) + fmt.header("assistant") + "The square is"
    turns, truncated = split_turns(text, fmt)
    assert truncated and turns == [(r, t) for r, t in GOOD[:3]]
    assert pair_triplet(turns, RELEASED, truncated=truncated) == (None, NO_PAIR)


@FORMATS
def test_truncated_after_a_complete_triplet_still_pairs(fmt):
    text = conversation(fmt, GOOD, end=False) + fmt.header("user") + P + "\nAnd the"
    triplet, reason, truncated = parse(text, fmt, RELEASED)
    assert truncated and reason is None and triplet[0] == "What colour is the square?"


@FORMATS
def test_only_a_truncated_turn(fmt):
    turns, truncated = split_turns(f"{P}\nWhat is sh", fmt)
    assert (turns, truncated) == ([], True)
    assert pair_triplet(turns, RELEASED, truncated=True) == (None, TRUNCATED_ONLY)
    # ran out right after opening a header
    turns, truncated = split_turns(conversation(fmt, GOOD[:1], end=False) + fmt.header("assistant"), fmt)
    assert truncated and turns == [GOOD[0]]


@FORMATS
def test_empty_turns_are_dropped(fmt):
    turns = [("user", "  "), ("assistant", ""), *GOOD]
    text = conversation(fmt, turns)
    got, truncated = split_turns(text, fmt)
    assert got == GOOD and not truncated
    assert pair_triplet(got, RELEASED)[0][1] == "Red."


@FORMATS
def test_assistant_without_user_is_skipped(fmt):
    turns = [("assistant", "Stray answer."), *GOOD]
    text = conversation(fmt, turns, first_open=False)
    triplet, reason, _ = parse(text, fmt, RELEASED)
    assert triplet == ("What colour is the square?", "Red.", GOOD[3][1])
    only = conversation(fmt, [GOOD[0], ("assistant", "A."), ("assistant", "B.")])
    assert parse(only, fmt, RELEASED)[:2] == (None, UNBALANCED)


@FORMATS
def test_two_users_in_a_row(fmt):
    turns = [GOOD[0], ("user", f"{I}\nWhat colour is the square?"), ("assistant", "Long answer, red.")]
    triplet, reason, _ = parse(conversation(fmt, turns), fmt, RELEASED)
    # the first question went unanswered: "Long answer, red." answers the informative one only
    assert (triplet, reason) == (None, UNBALANCED)
    turns = [("user", f"{P}\nUnanswered?"), *GOOD]
    assert parse(conversation(fmt, turns), fmt, RELEASED)[0] == ("What colour is the square?", "Red.", GOOD[3][1])


@FORMATS
def test_repeated_instruction_first_pair_wins(fmt):
    turns = [*GOOD,
             ("user", f"{P}\nWhat colour is the square?"), ("assistant", "Crimson."),
             ("user", f"{P}\nWhat shape is it?"), ("assistant", "A square."),
             ("user", f"{I}\nWhat shape is it?"), ("assistant", "It has four equal sides: a square.")]
    # answers after the triplet was complete are not read
    assert parse(conversation(fmt, turns), fmt, RELEASED)[0] == ("What colour is the square?", "Red.", GOOD[3][1])
    # a repeated answer of one kind before the pairing replaces the earlier one (the reference keeps the last)
    turns = [GOOD[0], GOOD[1], ("user", f"{P}\n  What colour is the square?  "), ("assistant", "Scarlet."),
             GOOD[2], GOOD[3]]
    assert parse(conversation(fmt, turns), fmt, RELEASED)[0][1] == "Scarlet."


@FORMATS
def test_two_precise_answers_to_one_instruction_keep_the_last(fmt):
    turns = [("user", f"{P}\nHow many eggs?"), ("assistant", "Two."),
             ("user", f"{P}\nHow many eggs?"), ("assistant", "Three."),
             ("user", f"{I}\nHow many eggs?"), ("assistant", "Three eggs sit in the bowl, so the answer is 3.")]
    assert parse(conversation(fmt, turns), fmt, RELEASED) == (
        ("How many eggs?", "Three.", "Three eggs sit in the bowl, so the answer is 3."), None, False)
    # the same for two informative answers before the precise one
    turns = [("user", f"{I}\nHow many eggs?"), ("assistant", "I see two."),
             ("user", f"{I}\nHow many eggs?"), ("assistant", "I see three."),
             ("user", f"{P}\nHow many eggs?"), ("assistant", "3")]
    assert parse(conversation(fmt, turns), fmt, RELEASED)[0] == ("How many eggs?", "3", "I see three.")


@FORMATS
def test_the_first_completed_instruction_wins_over_the_first_asked(fmt):
    # A asked precisely (twice), B asked both ways, then A informatively: B is complete first and
    # is the triplet; A's later informative answer is never read (the reference stops at B)
    turns = [("user", f"{P}\nA?"), ("assistant", "a"),
             ("user", f"{P}\nA?"), ("assistant", "a2"),
             ("user", f"{P}\nB?"), ("assistant", "b"),
             ("user", f"{I}\nB?"), ("assistant", "long b"),
             ("user", f"{I}\nA?"), ("assistant", "long a")]
    assert parse(conversation(fmt, turns), fmt, RELEASED) == (("B?", "b", "long b"), None, False)
    # without B's informative answer, A is the one, with its last precise answer
    turns = turns[:6] + turns[8:]
    assert parse(conversation(fmt, turns), fmt, RELEASED)[0] == ("A?", "a2", "long a")


@FORMATS
def test_earliest_complete_instruction_wins(fmt):
    turns = [("user", f"{P}\nA?"), ("assistant", "a"),
             ("user", f"{P}\nB?"), ("assistant", "b"),
             ("user", f"{I}\nB?"), ("assistant", "long b"),
             ("user", f"{I}\nA?"), ("assistant", "long a")]
    assert parse(conversation(fmt, turns), fmt, RELEASED)[0] == ("B?", "b", "long b")


@FORMATS
def test_only_precise(fmt):
    turns = [GOOD[0], GOOD[1], ("user", f"{P}\nWhat shape?"), ("assistant", "A square.")]
    assert parse(conversation(fmt, turns), fmt, RELEASED) == (None, NO_PAIR, False)


@FORMATS
def test_informative_before_precise(fmt):
    turns = [GOOD[2], GOOD[3], GOOD[0], GOOD[1]]
    assert parse(conversation(fmt, turns), fmt, RELEASED)[0] == ("What colour is the square?", "Red.", GOOD[3][1])


@FORMATS
def test_junk_output(fmt):
    assert parse("qwe rty uio" + fmt.end_of_text[0], fmt, RELEASED)[:2] == (None, PARSE_ERROR)
    assert parse("", fmt, RELEASED) == (None, PARSE_ERROR, False)
    assert parse("a b c d e f g", fmt, RELEASED) == (None, TRUNCATED_ONLY, True)
    # well-formed turns without the protocol's hint lines
    no_hints = conversation(fmt, [("user", "What is it?"), ("assistant", "A square.")])
    assert parse(no_hints, fmt, RELEASED)[:2] == (None, PARSE_ERROR)
    # text outside the turns is reported, a triplet after it still counts
    text = conversation(fmt, GOOD[:2], end=False) + "noise" + conversation(fmt, GOOD[2:], first_open=False)
    turns, _ = split_turns(text, fmt)
    assert ("junk", "noise") in turns
    assert pair_triplet(turns, RELEASED)[0] == ("What colour is the square?", "Red.", GOOD[3][1])


@FORMATS
def test_text_after_end_of_text_is_ignored(fmt):
    text = conversation(fmt, GOOD[:2]) + fmt.header("user") + conversation(fmt, GOOD[2:])
    assert parse(text, fmt, RELEASED) == (None, NO_PAIR, False)
    # the tokenizer's eos passed as an extra end-of-text token
    text = conversation(fmt, GOOD[:2], end=False) + "</s>" + conversation(fmt, GOOD[2:], first_open=False)
    assert parse(text, fmt, RELEASED, end_of_text=["</s>"])[:2] == (None, NO_PAIR)


def test_eos_equal_to_the_turn_end_does_not_end_the_text():
    text = conversation(LLAMA3, GOOD)
    assert parse(text, LLAMA3, RELEASED, end_of_text=["<|eot_id|>"])[1] is None


def test_header_without_blank_line_and_missing_end_marker():
    text = (f"{P}\nQ?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\nA.<|eot_id|>"
            f"<|start_header_id|>user<|end_header_id|>\n\n{I}\nQ?"
            f"<|start_header_id|>assistant<|end_header_id|>\n\nLong A.<|eot_id|><|end_of_text|>")
    assert parse(text, LLAMA3, RELEASED)[0] == ("Q?", "A.", "Long A.")


def test_detect():
    from adamllm.backbones.templates import LLAVA_NEXT_TEMPLATE, MLLAMA_TEMPLATE, QWEN2_VL_TEMPLATE

    assert detect(LLAVA_NEXT_TEMPLATE) is LLAMA3 and detect(MLLAMA_TEMPLATE) is LLAMA3
    assert detect(QWEN2_VL_TEMPLATE) is CHATML
    assert detect("<|start_header_id|>user<|end_header_id|>\n\n") is LLAMA3
    assert detect("<|im_start|>system\nx<|im_end|>\n<|im_start|>user\n") is CHATML
    with pytest.raises(ValueError, match="unknown chat format"):
        detect("[INST] hi [/INST]")
