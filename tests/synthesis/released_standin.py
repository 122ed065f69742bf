"""A tiny stand-in for the released ``AdaptLLM/visual-instruction-synthesizer``, with the files that
matter as that checkpoint ships them (docs/method.md §3; ../shared/docs/METHOD.md):

* ``chat_template.json`` (the older layout, no ``chat_template.jinja``) holding a template that, like
  the shipped one, writes a literal ``<image>`` line for an image, no BOS, no system turn, and a
  newline before each message's text, so every header is followed by three newlines;
* a Llama-3 tokenizer whose post-processor adds ``<|begin_of_text|>`` (as Llama-3 tokenizers do)
  and whose special tokens include ``<|reserved_special_token_4|>``;
* the processor config split as older checkpoints ship it: ``preprocessor_config.json`` (image
  processor) and ``processor_config.json`` declaring ``image_token: <|reserved_special_token_4|>``.

The weights are a random tiny LLaVA-NeXT of that shape (``adamllm.backbones.tiny``).
"""
from __future__ import annotations

import json
from pathlib import Path

IMAGE_TOKEN = "<|reserved_special_token_4|>"
SYSTEM = ("You are a helpful language and vision assistant. You are able to understand the visual content "
          "that the user provides, and assist the user with a variety of tasks using natural language.")

#: Written for this test from the shipped template's behaviour (images first as "<image>\n", then
#: "\n" + text + "<|eot_id|>" after each "header\n\n").
SHIPPED_STYLE_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{% if message['content'] is string %}{{ '\\n' + message['content'] + '<|eot_id|>' }}{% else %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}{{ '<image>\\n' }}{% endif %}{% endfor %}"
    "{% for item in message['content'] %}{% if item['type'] == 'text' %}"
    "{{ '\\n' + item['text'] + '<|eot_id|>' }}{% endif %}{% endfor %}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)


def reference_prompt(caption: str) -> str:
    """The reference conversation string for one caption, written out from docs/method.md."""
    header = "<|start_header_id|>{}<|end_header_id|>\n\n"
    return ("<|begin_of_text|>" + header.format("system") + SYSTEM + "<|eot_id|>"
            + header.format("user") + IMAGE_TOKEN + "\nDescribe the image.<|eot_id|>"
            + header.format("assistant") + caption + "<|eot_id|>" + header.format("user"))


def build_released_standin(out_dir: str | Path, seed: int = 0, template: str = SHIPPED_STYLE_TEMPLATE,
                           size: str = "tiny") -> Path:
    """Write the stand-in checkpoint into ``out_dir`` (see the module docstring); ``size``: the tiny
    builder's (``small`` has the head size vLLM's CPU attention takes)."""
    from adamllm.backbones.tiny import build_tiny

    out = build_tiny("llava_next", out_dir, seed=seed, size=size, image_token=IMAGE_TOKEN)
    (out / "chat_template.jinja").unlink()
    (out / "chat_template.json").write_text(json.dumps({"chat_template": template}, indent=2) + "\n",
                                            encoding="utf-8")
    processor = json.loads((out / "processor_config.json").read_text(encoding="utf-8"))
    image = processor.pop("image_processor")
    (out / "preprocessor_config.json").write_text(json.dumps(image, indent=2) + "\n", encoding="utf-8")
    (out / "processor_config.json").write_text(json.dumps(processor, indent=2) + "\n", encoding="utf-8")
    tokenizer = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    bos_id = next(t["id"] for t in tokenizer["added_tokens"] if t["content"] == "<|begin_of_text|>")
    tokenizer["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [bos_id],
                                                 "tokens": ["<|begin_of_text|>"]}},
    }
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False) + "\n", encoding="utf-8")
    return out
