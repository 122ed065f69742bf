"""Training samples encoded without running the image processor.

``encode`` runs the processor on every image to learn how many image tokens each placeholder
becomes, then ``encode_all`` throws the pixels away (``collate`` recomputes them per batch). Before
step 1 only the token ids, labels and lengths are needed, and the number of image tokens follows
from the image's size alone (``prompt_length.image_token_counts``, the processor's own count). So
here the text is tokenized once with one placeholder per image, each placeholder is repeated as
many times as the processor would, and the labels are carried over exactly as ``encode`` does.

What is checked of each image depends on ``check``:

* ``"decode"``: the image is decoded and checked as ``encode`` would (``adamllm.images.load_rgb``:
  missing, empty, truncated, too large or extreme files fail here, before step 1, and are
  quarantined); only the processor's resize / normalise / patchify work is skipped.
* ``"header"``: only the file's header is read (size and format, the same size limits); nothing
  is decoded before step 1. A file that is truncated after its header then fails when its batch is
  collated, with the same one-line error naming the file, but mid-run.

``encode_all`` checks the result against a full ``encode`` on the first sample with images and
falls back to full encoding when they differ, so a family or processor version whose count is
wrong costs speed, never correctness.
"""
from __future__ import annotations

import os
from typing import Any, Literal, Optional, Sequence

import torch

from adamllm.backbone import BadSample, SampleTooLong

ImageCheck = Literal["decode", "header"]


def _sizes(images: Sequence[Any], root: str | os.PathLike | None, check: ImageCheck) -> list[tuple[int, int]]:
    """``(height, width)`` of each image, after the checks ``check`` names."""
    from adamllm.images import _check_size, _label

    from .adapter import load_image
    from .prompt_length import image_size

    sizes = []
    for image in images:
        if check == "decode":
            width, height = load_image(image, root).size  # decoded and checked as encode does
        else:
            height, width = image_size(image, root)
            _check_size(_label(image), width, height)
        sizes.append((height, width))
    return sizes


def encode_from_headers(adapter: Any, messages: Sequence[dict], images: Sequence[Any],
                        policy: str = "assistant", image_root: str | os.PathLike | None = None, *,
                        check: ImageCheck = "decode", token_types: bool = False) -> Optional[dict]:
    """``adapter.encode(messages, images, policy)`` without its pixel tensors, the processor not
    run; None when the processor cannot count image tokens (Mllama), then ``encode`` is needed.
    ``token_types``: also the ``mm_token_type_ids`` the Qwen-VL processors return (1 on image tokens).
    Raises ``BadSample`` and ``SampleTooLong`` as ``encode`` does."""
    from adamllm.backbones.adapter import count_images

    from .prompt_length import image_token_counts

    n_placeholders = count_images(messages)
    if n_placeholders != len(images):
        raise BadSample(f"{n_placeholders} <image> placeholders but {len(images)} images")
    try:
        sizes = _sizes(images, image_root, check)
    except (OSError, ValueError) as exc:  # ValueError: adamllm.images.BadImage, PathEscapeError
        raise BadSample(f"unreadable image: {exc}") from exc
    counts = image_token_counts(adapter.processor, sizes)
    if counts is None:
        return None
    _text, plain_ids, plain_labels = adapter.plain_tokens(messages, policy)
    image_id = adapter.image_token_id
    if sum(1 for token in plain_ids if token == image_id) != len(counts):
        return None  # the template writes the image token otherwise: leave it to the processor
    ids: list[int] = []
    remaining = iter(counts)
    for token in plain_ids:
        ids.extend([token] * next(remaining) if token == image_id else [token])
    if len(ids) > adapter.max_length:
        raise SampleTooLong(len(ids), adapter.max_length)
    input_ids = torch.tensor(ids, dtype=torch.long)
    sample = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    if token_types:
        sample["mm_token_type_ids"] = (input_ids == image_id).long()
    sample["labels"] = torch.tensor(adapter._expand_labels(plain_ids, plain_labels, ids), dtype=torch.long)
    sample["num_image_tokens"] = int(sum(counts))
    return sample


def same_sample(header: dict, full: dict, pixel_keys: Sequence[str]) -> bool:
    """Whether a header-encoded sample equals ``encode``'s, pixel tensors aside."""
    keys = set(full) - set(pixel_keys)
    if set(header) != keys:
        return False
    for key in keys:
        a, b = header[key], full[key]
        if isinstance(b, torch.Tensor):
            if not isinstance(a, torch.Tensor) or a.shape != b.shape or not torch.equal(a.long(), b.long()):
                return False
        elif a != b:
            return False
    return True


__all__ = ["ImageCheck", "encode_from_headers", "same_sample"]
