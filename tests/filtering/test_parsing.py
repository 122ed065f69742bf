"""Verdict parsing, both ways, on the outputs a 2-token judge writes."""
import pytest

from adamllm.plugins.filtering.parsing import parse_legacy, parse_normalized, parse_verdict, parsings_differ

CASES = [  # (judge text, legacy, normalized)
    ("yes", "yes", "yes"),
    ("Yes.", "other", "yes"),
    (" No", "no", "no"),
    ("open-ended", "other", "open"),
    (" Open\n", "open", "open"),
    ("Yesterday", "other", "other"),
    ("maybe so", "other", "other"),
    ("#$%", "other", "other"),
    ("", "other", "other"),
]


@pytest.mark.parametrize("text,legacy,normalized", CASES)
def test_each_parsing_labels_exactly(text, legacy, normalized):
    assert parse_legacy(text) == legacy
    assert parse_normalized(text) == normalized
    assert parse_verdict(text, "legacy") == legacy and parse_verdict(text, "normalized") == normalized
    assert parsings_differ(text) is (legacy != normalized)


def test_unknown_parsing_is_refused():
    with pytest.raises(ValueError, match="unknown parsing 'loose'; expected one of legacy, normalized"):
        parse_verdict("yes", "loose")
