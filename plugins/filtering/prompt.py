"""The consistency filter's few-shot prompt: a text template with three placeholders.

The built-in template (``consistency_prompt.txt`` beside this module, our own wording) states the
three labels and gives six worked examples (two each of Yes, No and Open; each as question, long
informative answer, short precise answer, label), then the triplet to judge, ending in ``Label:``
so that a base LM continues with the label. A prompt file named in the config replaces it: UTF-8
text holding each of ``{instruction}``, ``{informative}`` and ``{precise}`` exactly once; they
are replaced literally (other braces in the text are left alone), with the triplet's fields
stripped of surrounding whitespace. Line breaks at the end of the file (editors add one) are removed:
the model continues right after the template's last character. Any other ``{name}`` (a misspelt placeholder) is an error, as
is a file that cannot be read or lacks a placeholder: a wrong prompt would otherwise judge a
whole run silently wrong.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from adamllm.records import TaskTriplet

DEFAULT_PROMPT_FILE = Path(__file__).with_name("consistency_prompt.txt")
PLACEHOLDERS = ("instruction", "informative", "precise")
_NAMED_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PromptFileError(ValueError):
    """A prompt file that cannot serve as the filter's template (the message names the file)."""


def check_template(text: str, where: str) -> str:
    """``text`` if it is a usable template, else a ``PromptFileError`` naming ``where``."""
    for name in PLACEHOLDERS:
        count = text.count("{" + name + "}")
        if count != 1:
            raise PromptFileError(f"{where}: the prompt must contain {{{name}}} exactly once, found it {count} times "
                                  f"(placeholders: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
    for match in _NAMED_FIELD.finditer(text):
        if match.group(1) not in PLACEHOLDERS:
            line = text.count("\n", 0, match.start()) + 1
            raise PromptFileError(f"{where}:{line}: unknown placeholder {match.group(0)}; the placeholders are "
                                  f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
    return text


def load_template(path: Optional[str | Path] = None) -> str:
    """The template in ``path`` (checked), or the built-in one when ``path`` is None."""
    path = Path(path) if path is not None else DEFAULT_PROMPT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptFileError(f"{path}: no such prompt file") from None
    except UnicodeDecodeError as exc:
        raise PromptFileError(f"{path}: the prompt file is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise PromptFileError(f"{path}: cannot read the prompt file ({exc.strerror or exc})") from None
    return check_template(text.removeprefix("\ufeff").rstrip("\r\n"), str(path))


def build_prompt(template: str, triplet: TaskTriplet) -> str:
    """The template with the triplet's instruction, informative and precise answers filled in
    (one pass, so a field that itself contains ``{precise}`` is not substituted again)."""
    values = {"instruction": triplet.instruction.strip(), "informative": triplet.informative.strip(),
              "precise": triplet.precise.strip()}
    pattern = "|".join(re.escape("{" + name + "}") for name in PLACEHOLDERS)
    return re.sub(pattern, lambda m: values[m.group(0)[1:-1]], template)
