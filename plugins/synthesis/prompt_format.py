"""How a synthesizer's conversation is written out as text: its prompt format.

The protocol profile (``protocol.py``) fixes the *words* of the conversation (describe request,
hint lines); the prompt format fixes the *string* around them. Two formats:

* ``chat_template``: the checkpoint's own chat template. Synthesizers tuned by adamllm use it: the
  tune stage trained them on conversations rendered by that same template.
* ``llava_llama_3``: the conversation string the released ``AdaptLLM/visual-instruction-synthesizer``
  was trained on and is prompted with by the reference code (docs/method.md §3): BOS, a system turn
  with LLaVA's system message, Llama-3 headers each followed by one blank line, the image token on
  its own line before ``Describe the image.``, and the tokenizer's own BOS added in front when the
  string is encoded (two BOS tokens, as in that model's training). The checkpoint's
  ``chat_template.json`` cannot stand in for it: it writes a literal ``<image>`` where the
  processor's image token is ``<|reserved_special_token_4|>``, has no BOS and no system turn, and
  puts a blank line too many after every header.

``auto`` (the default) picks ``llava_llama_3`` for the released checkpoint (named by its hub id,
or a local copy whose path names it) and for a checkpoint that carries its signature (a LLaVA-NeXT
processor whose image token is ``<|reserved_special_token_4|>`` and a chat template that never
writes that token: a checkpoint tuned the reference way), else ``chat_template``; ``choose`` says
which and why, and ``probe`` checks one prompt before any batch, so a wrong format fails in
seconds instead of after a GPU-hour.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

#: The released synthesizer's hub id.
RELEASED_SYNTHESIZER = "AdaptLLM/visual-instruction-synthesizer"
#: The image token the released synthesizer's processor declares.
RELEASED_IMAGE_TOKEN = "<|reserved_special_token_4|>"
#: The system message of the LLaVA Llama-3 conversation format (an interface constant of the weights).
LLAVA_LLAMA_3_SYSTEM = ("You are a helpful language and vision assistant. You are able to understand the "
                        "visual content that the user provides, and assist the user with a variety of tasks "
                        "using natural language.")


class PromptFormatError(ValueError):
    """A synthesizer prompt that cannot be encoded: the format does not fit the checkpoint."""


@dataclass(frozen=True)
class PromptFormat:
    """``template(image_token)``: the Jinja chat template the conversation is rendered with (None:
    the checkpoint's own). ``add_bos``: the tokenizer's BOS is put in front of the rendered text
    when it is encoded, as the reference code tokenizes its prompts."""

    name: str
    description: str
    template: Callable[[str], str] | None = None
    add_bos: bool = False


def llava_llama_3_template(image_token: str, system: str = LLAVA_LLAMA_3_SYSTEM) -> str:
    """The LLaVA Llama-3 conversation as a chat template: ``{{ bos_token }}``, the system turn
    (unless the conversation opens with one), then per message ``<|start_header_id|>ROLE
    <|end_header_id|>\\n\\n``, the message's images as ``IMAGE_TOKEN\\n`` each, its text and
    ``<|eot_id|>``, with nothing between turns. One line, no trim markers (transformers renders
    with ``trim_blocks``); prefix-consistent, so labels can be placed by rendering prefixes."""
    is_image = "(item['type'] == 'image' or 'image' in item)"
    return "".join([
        "{% macro render_content(content) %}",
        "{% if content is string %}{{ content }}{% else %}",
        "{% for item in content %}{% if " + is_image + " %}" + image_token + "\n{% endif %}{% endfor %}",
        "{% for item in content %}{% if not " + is_image + " and item['type'] == 'text' %}"
        "{{ item['text'] }}{% endif %}{% endfor %}",
        "{% endif %}{% endmacro %}",
        "{{ bos_token }}",
        "{% if messages[0]['role'] != 'system' %}<|start_header_id|>system<|end_header_id|>\n\n"
        + system + "<|eot_id|>{% endif %}",
        "{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
        "{{ render_content(message['content']) }}<|eot_id|>{% endfor %}",
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}",
    ])


CHAT_TEMPLATE = PromptFormat("chat_template", "the checkpoint's own chat template")
LLAVA_LLAMA_3 = PromptFormat("llava_llama_3", "the reference LLaVA Llama-3 conversation string (system turn, "
                             "two BOS), as the released synthesizer was trained", llava_llama_3_template, add_bos=True)
FORMATS = {f.name: f for f in (CHAT_TEMPLATE, LLAVA_LLAMA_3)}
CHOICES = ("auto", *FORMATS)


def names_released(model: str) -> bool:
    """Whether a model id or local path names the released synthesizer (a hub snapshot folder
    ``models--AdaptLLM--visual-instruction-synthesizer`` or a folder named after it included)."""
    text = str(model).lower().replace("--", "/")
    return RELEASED_SYNTHESIZER.lower() in text or text.rstrip("/").endswith("visual-instruction-synthesizer")


def _template_writes_image_token(adapter: Any) -> bool:
    rendered = adapter.render([{"role": "user", "content": "<image>x"}])
    return rendered.count(adapter.image_token) == 1


def choose(setting: str, adapter: Any) -> tuple[PromptFormat, str]:
    """``(format, why)`` for a ``prompt_format`` setting and the synthesizer's adapter."""
    if setting != "auto":
        return FORMATS[setting], "set by synthesizer.prompt_format"
    model = str(getattr(getattr(adapter, "config", None), "model", ""))
    if getattr(adapter, "family", None) == "llava_next":
        if names_released(model):
            return LLAVA_LLAMA_3, f"the checkpoint is the released {RELEASED_SYNTHESIZER}"
        try:
            writes_token = _template_writes_image_token(adapter)
        except Exception:  # noqa: BLE001 - a template that cannot render at all
            writes_token = False
        if adapter.image_token == RELEASED_IMAGE_TOKEN and not writes_token:
            return LLAVA_LLAMA_3, (f"the checkpoint has the released synthesizer's signature: its processor's image "
                                   f"token is {RELEASED_IMAGE_TOKEN} and its chat template never writes it")
    return CHAT_TEMPLATE, "the checkpoint's own chat template (a synthesizer tuned with it)"


def apply(fmt: PromptFormat, adapter: Any) -> None:
    """Make ``adapter`` render conversations in ``fmt`` (the processor's chat template replaced)."""
    if fmt.template is not None:
        adapter.processor.chat_template = fmt.template(adapter.image_token)


def probe(adapter: Any, prompt: str, fmt: PromptFormat, why: str) -> int:
    """Encode one synthesizer prompt with a blank image; returns its length in tokens. Raises
    ``PromptFormatError`` naming the cause when the image does not become image tokens."""
    from PIL import Image

    found = prompt.count(adapter.image_token) if adapter.image_token else 0
    cause = None
    if found != 1:
        cause = f"{found} image tokens for 1 image"
    else:
        try:
            sample = adapter.encode_prompt(prompt, [Image.new("RGB", (64, 64), (255, 255, 255))],
                                           **({"add_bos": True} if fmt.add_bos else {}))
        except ValueError as exc:
            cause = str(exc)
        else:
            if not sample.get("num_image_tokens", 1):
                cause = "0 image tokens for 1 image"
            else:
                return len(sample["input_ids"])
    hint = (f"the processor's image token is {adapter.image_token!r}; the released synthesizer needs "
            f"synthesizer.prompt_format: llava_llama_3" if fmt is CHAT_TEMPLATE else
            "set synthesizer.prompt_format: chat_template for a checkpoint tuned with its own template")
    raise PromptFormatError(f"prompt does not encode: {cause} (prompt format {fmt.name}: {why}; {hint})")
