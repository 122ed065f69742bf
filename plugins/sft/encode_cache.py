"""The encoded training set, written once and reused by a resume, a ``--force`` rerun and every rank.

Encoding before step 1 is linear in the records (tokenising every conversation, checking every
image); at the paper's 500K records it is minutes to an hour, and a crash at step 10,000 used to
pay it again. ``OUT/train/encoded/`` keeps the last encoded set under a key that covers
everything the encoding depends on:

* the cache format, the adapter class and family, ``max_length``, the label policy and
  ``image_check``;
* the tokenizer (its whole serialised state), the chat template and the image processor's
  settings (the pixel budget among them), and the transformers and tokenizers versions;
* every record's messages and image names, in order, and the content (sha256, through the run's
  content cache, so an unchanged rerun only ``stat``s each image) of every image file.

So a changed record, image file, tokenizer or budget never reuses it (a new key; the old entry is
replaced). The tensors are one safetensors file (no pickle), the rest JSON.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional, Sequence

FORMAT = 1
FOLDER = "encoded"


def _adapter_state(adapter: Any, policy: str, image_check: Optional[str]) -> dict:
    import tokenizers
    import transformers

    tokenizer = adapter.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    processor = getattr(adapter, "processor", None)
    image_processor = getattr(processor, "image_processor", None)
    return {
        "format": FORMAT, "adapter": f"{type(adapter).__module__}.{type(adapter).__qualname__}",
        "family": getattr(adapter, "family", None), "max_length": adapter.max_length, "policy": policy,
        "image_check": image_check, "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
        "tokenizer": hashlib.sha256(vocab.encode("utf-8")).hexdigest(),
        "special": sorted(map(str, tokenizer.all_special_tokens)),
        "chat_template": getattr(processor, "chat_template", None) or tokenizer.chat_template,
        "image_processor": image_processor.to_json_string() if image_processor is not None else None,
    }


def cache_key(adapter: Any, records: Sequence[dict], *, policy: str, image_root: Any, image_check: Optional[str],
              content_folder: Any = None) -> Optional[str]:
    """The key of ``records`` encoded by ``adapter``; None when it cannot be told (an image given
    as bytes or a PIL image, or a path outside the image root: then nothing is cached)."""
    from adamllm.content import cache_for, files_digest
    from adamllm.io import resolve_under

    digest = hashlib.sha256(json.dumps(_adapter_state(adapter, policy, image_check), sort_keys=True,
                                       default=str).encode("utf-8"))
    entries: list[tuple[str, str]] = []
    for record in records:
        images = list(record.get("images") or [])
        if not all(isinstance(image, str) for image in images):
            return None
        digest.update(json.dumps([record.get("messages"), images], sort_keys=True, default=str).encode("utf-8"))
        digest.update(b"\n")
        for image in images:
            try:
                path = resolve_under(image_root, image) if image_root is not None else Path(image).resolve()
            except (OSError, ValueError):
                return None
            entries.append((image, str(path)))
    with cache_for(content_folder) as cache:
        images = files_digest(cache, entries)
    digest.update(json.dumps(images, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def save(folder: Path, key: str, encoded: Any) -> None:
    """Write ``encoded`` (an ``EncodedSet``) as the cache entry for ``key``, atomically."""
    import torch
    from safetensors.torch import save_file

    tensors: dict[str, list] = {}
    samples = []
    for sample in encoded.samples:
        shapes, other = {}, {}
        for name, value in sample.items():
            if isinstance(value, torch.Tensor):
                shapes[name] = [list(value.shape), str(value.dtype).removeprefix("torch.")]
                tensors.setdefault(f"{name}:{shapes[name][1]}", []).append(value.reshape(-1))
            elif name == "image_refs":
                other[name] = [list(value[0]), None if value[1] is None else str(value[1])]
            else:
                other[name] = value
        samples.append({"tensors": shapes, "other": other})
    meta = {"key": key, "format": FORMAT, "samples": samples, "indices": encoded.indices,
            "dropped": dict(encoded.dropped), "problems": encoded.problems, "rejected": encoded.rejected,
            "header_encoded": encoded.header_encoded}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    flat = {name: torch.cat(parts) for name, parts in tensors.items()}
    save_file(flat, str(tmp / "samples.safetensors"))
    (tmp / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def load(folder: Path, key: str) -> Any:
    """The ``EncodedSet`` cached under ``key`` in ``folder``, or None (absent, another key, unreadable)."""
    import torch
    from safetensors.torch import load_file

    from adamllm.backbone import EncodedSet

    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("key") != key or meta.get("format") != FORMAT:
            return None
        flat = load_file(str(folder / "samples.safetensors"))
    except Exception:  # noqa: BLE001 - absent, half-replaced by another rank, or unreadable: only a cache
        return None
    offsets = dict.fromkeys(flat, 0)
    result = EncodedSet(indices=meta["indices"], problems=meta["problems"],
                        rejected=[tuple(r) for r in meta["rejected"]], header_encoded=meta["header_encoded"])
    result.dropped.update(meta["dropped"])
    for entry in meta["samples"]:
        sample: dict[str, Any] = {}
        for name, (shape, dtype) in entry["tensors"].items():
            store = f"{name}:{dtype}"
            size = int(torch.Size(shape).numel())
            sample[name] = flat[store][offsets[store]:offsets[store] + size].reshape(shape).clone()
            offsets[store] += size
        for name, value in entry["other"].items():
            sample[name] = (value[0], value[1]) if name == "image_refs" else value
        result.samples.append(sample)
    return result


__all__ = ["FOLDER", "FORMAT", "cache_key", "load", "save"]
