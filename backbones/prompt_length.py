"""How many tokens a prompt will be once encoded, without decoding its images.

The generation engine (``adamllm.generation.generate_all``) sorts the requests of a window by
length so that a batch pads little. A text length is a poor key for image-text models: the
number of image tokens depends on the image's size (Qwen-VL's dynamic resolution, LLaVA-NeXT's
AnyRes tiles), and in the padded prefill every pad token costs a token's compute. This module
counts exactly: the rendered text's tokens, with each image placeholder replaced by the number
of tokens the processor will expand it to, computed from the image's size alone
(``processor._get_num_multimodal_tokens``, what vLLM uses for the same purpose; a family whose
processor lacks it, Mllama, keeps one token per image, which is what its text holds).

Only the image header is read (PIL opens lazily), so a window of paths is sized in microseconds
per image. Anything unexpected returns None and the engine falls back to the text length.
"""
from __future__ import annotations

import io
import os
from typing import Any, Optional, Sequence


def image_size(source: Any, root: str | os.PathLike | None = None) -> tuple[int, int]:
    """``(height, width)`` of a PIL image, encoded bytes or a path (confined to ``root`` as when
    it is loaded), from the header only. A path that is empty or not an image is a ``BadImage``
    naming the file."""
    from PIL import Image

    if isinstance(source, Image.Image):
        width, height = source.size
        return height, width
    if isinstance(source, (bytes, bytearray, memoryview)):
        with Image.open(io.BytesIO(bytes(source))) as image:
            width, height = image.size
        return height, width
    from adamllm.images import BadImage, open_regular

    from .adapter import confined

    path = confined(source, root)
    with open_regular(path) as handle:  # a FIFO would hang
        if os.fstat(handle.fileno()).st_size == 0:
            raise BadImage(f"{path}: empty file (0 bytes)")
        try:
            with Image.open(handle) as image:
                width, height = image.size
        except (OSError, ValueError, SyntaxError) as exc:
            raise BadImage(f"{path}: not a readable image ({exc})") from exc
    return height, width


def image_token_counts(processor: Any, sizes: Sequence[tuple[int, int]]) -> Optional[list[int]]:
    """Tokens each image of ``sizes`` expands to in ``processor``'s output, or None when the
    processor cannot say (then each image stays the one placeholder token of the text)."""
    count = getattr(processor, "_get_num_multimodal_tokens", None)
    if count is None or not sizes:
        return None
    data = count(image_sizes=[list(s) for s in sizes])
    tokens = data.get("num_image_tokens") if isinstance(data, dict) else getattr(data, "num_image_tokens", None)
    return [int(t) for t in tokens] if tokens is not None and len(tokens) == len(sizes) else None


def encoded_length(adapter: Any, text: str, images: Sequence[Any] = (),
                   image_root: str | os.PathLike | None = None) -> int:
    """The length of ``text`` (a rendered prompt, one ``adapter.image_token`` per image) once
    encoded with ``images``."""
    ids = adapter.tokenizer(text, add_special_tokens=False)["input_ids"]
    if not images:
        return len(ids)
    counts = image_token_counts(adapter.processor, [image_size(i, image_root) for i in images])
    if counts is None:
        return len(ids)
    placeholders = sum(1 for i in ids if i == adapter.image_token_id)
    return len(ids) - placeholders + sum(counts[:placeholders])
