"""Chat templates (Jinja) for the tiny checkpoints, mimicking the real models' formats.

* ``QWEN2_VL_TEMPLATE``: ChatML as in Qwen2-VL-Instruct and Qwen2.5-VL-Instruct (the two render
  alike). A default system message ("You are a helpful assistant.") is inserted when the
  conversation does not start with one; an image item renders in place as
  ``<|vision_start|><|image_pad|><|vision_end|>``.
* ``QWEN3_VL_TEMPLATE``: the same ChatML without the default system message, as in
  Qwen3-VL-Instruct (a system turn is rendered only when the conversation has one).
* ``LLAVA_NEXT_TEMPLATE``: Llama-3 headers as in llama3-llava-next; the images of a message
  come first, each as ``<image>\\n``, then its text.
* ``MLLAMA_TEMPLATE``: Llama-3 headers as in Llama-3.2-Vision-Instruct; the images of a
  message come first, each as ``<|image|>``, then its text.

All of them accept the transformers content-list format
(``{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "..."}]}``) as
well as plain string content, support ``add_generation_prompt``, and wrap each assistant body
plus its end-of-turn token in ``{% generation %}`` tags so that
``apply_chat_template(..., return_assistant_tokens_mask=True)`` marks exactly the tokens a
model has to produce. The separator after the end-of-turn token (ChatML's newline) is outside
the tags: the model never generates it.

The templates are prefix-consistent: the rendering of ``messages[:k]`` is a prefix of the
rendering of ``messages[:k + 1]``, and the rendering with ``add_generation_prompt=True`` is a
prefix of the rendering with the next assistant message appended. Nothing in a message's
rendering depends on later messages.

Jinja notes: ``{% generation %}`` may not straddle an ``{% if %}`` block, so assistant
messages take their own branch and the content rendering lives in a macro. No ``{%-``/``-%}``
trim markers are used (they ate the newline after ``<|im_end|>``); the templates are built
from single-line pieces instead. transformers renders chat templates with
``trim_blocks=True``, which drops a newline written right after a block tag; so a newline that
follows a tag (the one after ``{% endgeneration %}``) is emitted as an expression,
``{{ '\\n' }}``.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_SYSTEM_MESSAGE",
    "LLAVA_NEXT_TEMPLATE",
    "MLLAMA_TEMPLATE",
    "QWEN2_VL_TEMPLATE",
    "QWEN3_VL_TEMPLATE",
    "TEMPLATES",
    "template_for",
]

DEFAULT_SYSTEM_MESSAGE = "You are a helpful assistant."


def _is_image(var: str) -> str:
    """Jinja test for an image content item (`{"type": "image"}`, `{"image": ...}` or `image_url`)."""
    return (f"({var}['type'] == 'image' or 'image' in {var} or 'image_url' in {var} "
            f"or {var}['type'] == 'image_url')")


def _is_text(var: str) -> str:
    return f"({var}['type'] == 'text' or 'text' in {var})"


# ---------------------------------------------------------------------------------------------
# The Qwen-VL families: ChatML, items rendered in order.
# ---------------------------------------------------------------------------------------------
def _chatml_template(default_system: str | None) -> str:
    """ChatML with images in place; ``default_system`` opens a conversation that has no system turn."""
    parts = [
        "{% macro render_content(content) %}",
        "{% if content is string %}{{ content }}",
        "{% else %}{% for item in content %}",
        "{% if " + _is_image("item") + " %}<|vision_start|><|image_pad|><|vision_end|>",
        "{% elif item['type'] == 'video' or 'video' in item %}<|vision_start|><|video_pad|><|vision_end|>",
        "{% elif " + _is_text("item") + " %}{{ item['text'] }}",
        "{% endif %}{% endfor %}{% endif %}",
        "{% endmacro %}",
        "{% for message in messages %}",
    ]
    if default_system is not None:
        parts.append("{% if loop.first and message['role'] != 'system' %}"
                     "<|im_start|>system\n" + default_system + "<|im_end|>\n{% endif %}")
    parts += [
        "{% if message['role'] == 'assistant' %}",
        "<|im_start|>assistant\n{% generation %}{{ render_content(message['content']) }}"
        "<|im_end|>{% endgeneration %}{{ '\\n' }}",
        "{% else %}",
        "<|im_start|>{{ message['role'] }}\n{{ render_content(message['content']) }}<|im_end|>\n",
        "{% endif %}",
        "{% endfor %}",
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    ]
    return "".join(parts)


QWEN2_VL_TEMPLATE = _chatml_template(DEFAULT_SYSTEM_MESSAGE)
QWEN3_VL_TEMPLATE = _chatml_template(None)


# ---------------------------------------------------------------------------------------------
# Llama-3 headers (LLaVA-NeXT and Mllama): images first, then the text items.
# ---------------------------------------------------------------------------------------------
def _llama3_template(image_text: str) -> str:
    parts = [
        "{% macro render_content(content) %}",
        "{% if content is string %}{{ content }}",
        "{% else %}",
        "{% for item in content %}{% if " + _is_image("item") + " %}" + image_text
        + "{% endif %}{% endfor %}",
        "{% for item in content %}{% if not " + _is_image("item") + " and " + _is_text("item")
        + " %}{{ item['text'] }}{% endif %}{% endfor %}",
        "{% endif %}",
        "{% endmacro %}",
        "{{ bos_token }}",
        "{% for message in messages %}",
        "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n",
        "{% if message['role'] == 'assistant' %}",
        "{% generation %}{{ render_content(message['content']) }}<|eot_id|>{% endgeneration %}",
        "{% else %}",
        "{{ render_content(message['content']) }}<|eot_id|>",
        "{% endif %}",
        "{% endfor %}",
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}",
    ]
    return "".join(parts)


LLAVA_NEXT_TEMPLATE = _llama3_template("<image>\n")
MLLAMA_TEMPLATE = _llama3_template("<|image|>")

TEMPLATES = {
    "qwen2_vl": QWEN2_VL_TEMPLATE,
    "qwen2_5_vl": QWEN2_VL_TEMPLATE,
    "qwen3_vl": QWEN3_VL_TEMPLATE,
    "llava_next": LLAVA_NEXT_TEMPLATE,
    "mllama": MLLAMA_TEMPLATE,
}


def template_for(family: str) -> str:
    """The chat template of a family (``qwen2_vl``, ``qwen2_5_vl``, ``qwen3_vl``, ``llava_next``, ``mllama``)."""
    try:
        return TEMPLATES[family]
    except KeyError:
        raise ValueError(f"unknown family {family!r}; expected one of {sorted(TEMPLATES)}") from None
