"""The template pools: big enough, distinct, and every template uses each field of its pool once."""
import string

import pytest

from adamllm.plugins.compose.templates import CAPTION_INSTRUCTIONS, POOL_FIELDS, POOLS


def fields(text):
    return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]


@pytest.mark.parametrize("pool", ["qa", "cot"])
@pytest.mark.parametrize("direction", ["forward", "inverted"])
def test_pools(pool, direction):
    templates = POOLS[pool][direction]
    assert len(templates) >= 20
    assert len(set(templates)) == len(templates)
    for template in templates:
        used = fields(template.user) + fields(template.assistant)
        assert sorted(used) == sorted(POOL_FIELDS[pool]), template
        if direction == "forward":
            assert "{question}" in template.user and "{question}" not in template.assistant
            assert "{answer}" in template.assistant
        else:  # the answer is given, never asked for; the reply holds what was not given
            assert "{answer}" in template.user and "{answer}" not in template.assistant
        # a given answer ends the message or is followed by a line break
        at = template.user.find("{answer}")
        if at >= 0:
            assert template.user[at + len("{answer}"):][:1] in ("", "\n"), template


def test_fill_does_not_read_braces_in_the_values():
    template = POOLS["qa"]["forward"][0]
    assert template.fill(question="What is {x}?", answer="{answer}") == ("What is {x}?", "{answer}")


def test_caption_instructions():
    assert len(CAPTION_INSTRUCTIONS) >= 20 and len(set(CAPTION_INSTRUCTIONS)) == len(CAPTION_INSTRUCTIONS)
    assert all(text.strip() == text and "<image>" not in text for text in CAPTION_INSTRUCTIONS)
