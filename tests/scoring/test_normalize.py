"""The VQA normalisation, legacy quirks included."""
import pytest

from adamllm.domains.scoring.normalize import normalize_answer


@pytest.mark.parametrize("text, expected", [
    # "," touches a space in the original, so every "," is deleted: "y,z" glues into "yz".
    ("x, y,z", "x yz"),
    # No "," touches a space: each becomes a space.
    ("y,z", "y z"),
    # Any digit,digit deletes every mark, so "x-ray" glues too; "(" ")" go, the article "a" drops.
    ("1,000 (a) x-ray", "1000 xray"),
    # Without digit,digit a lone "-" becomes a space.
    ("x-ray", "x ray"),
    # Each mark is judged on the text as given: "(" turning into a space puts a space next to
    # "-", but "-" still becomes a space (judged on the updated text, "zw" would glue).
    ("x(-y z-w", "x y z w"),
    # ":", "'", "%", "*" are kept.
    ("50% : it's *", "50% : it's *"),
    # A period before a digit stays, others go.
    ("3.5 cm.", "3.5 cm"),
])
def test_punctuation(text, expected):
    assert normalize_answer(text) == expected


def test_number_words_articles_and_case():
    assert normalize_answer("The Two kidneys") == "2 kidneys"
    assert normalize_answer("none of ten, eleven") == "0 of 10 eleven"
    assert normalize_answer("An organ, a lobe") == "organ lobe"


def test_contractions_get_their_apostrophe_back():
    assert normalize_answer("it isnt, dont") == "it isn't don't"
    assert normalize_answer("don't") == "don't"


def test_only_first_32_periods_go():
    # 40 periods glued to "x": 32 deleted, 8 left.
    assert normalize_answer("." * 40 + "x") == "." * 8 + "x"
    # A second pass removes the rest; no cap removes them all at once.
    assert normalize_answer(normalize_answer("." * 40 + "x")) == "x"
    assert normalize_answer("." * 40 + "x", period_limit=None) == "x"


def test_empty():
    assert normalize_answer("") == ""
    assert normalize_answer("the a an") == ""
