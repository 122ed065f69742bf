"""The shared backbone-adapter implementation; one subclass per model family.

Labels come from the model's own chat template, whatever it is: the adapter renders growing
prefixes of the conversation to find where each message starts and ends in the text, labels
characters by policy, tokenises the text (one placeholder per image) with offsets, then walks the
processor's output, where each placeholder is expanded into the image's tokens. Labels therefore
never depend on ``{% generation %}`` tags (real checkpoints' templates lack them), and a sample
that is too long is refused whole instead of cut through its image tokens.
"""
from __future__ import annotations

import contextlib
import os

from pathlib import Path
from typing import Any, ClassVar, Iterable, Sequence

import torch

from adamllm.backbone import (
    GROUPS,
    IGNORE_INDEX,
    IMAGE_PLACEHOLDER,
    BackboneConfig,
    BadSample,
    EncodedSet,
    GenerationSettings,
    LabelPolicy,
    SampleTooLong,
    unwrap_model,
)

from .checkpoints import CheckpointError, check_family, check_weights, family_matches, safe_from_pretrained

LORA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class TemplateError(ValueError):
    """The chat template does not render conversations as growing prefixes."""


def to_content_list(messages: Sequence[dict]) -> list[dict]:
    """ShareGPT messages (``<image>`` in string content) -> transformers content lists."""
    converted = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            parts: list[dict] = []
            pieces = content.split(IMAGE_PLACEHOLDER)
            for i, piece in enumerate(pieces):
                if i > 0:
                    parts.append({"type": "image"})
                if piece:
                    parts.append({"type": "text", "text": piece})
            content = parts
        converted.append({"role": message["role"], "content": content})
    return converted


def count_images(messages: Sequence[dict]) -> int:
    total = 0
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            total += content.count(IMAGE_PLACEHOLDER)
        else:
            total += sum(1 for part in content if part.get("type") == "image")
    return total


def load_image(image: Any, root: str | os.PathLike | None = None):
    """A PIL RGB image from a PIL image, encoded bytes or a path; with a ``root``, a path (relative
    or absolute, symlinks followed) must lie inside it. Decoded and checked by
    ``adamllm.images.load_rgb``: an unusable image raises ``BadImage`` naming the file; 16-bit
    grayscale is scaled by its value range, alpha is composited onto white."""
    from adamllm.images import load_rgb

    return load_rgb(confined(image, root))


def confined(image: Any, root: str | os.PathLike | None = None) -> Any:
    """``image`` itself, or, for a path with a ``root``, the path resolved inside ``root``
    (absolute paths and symlinks included; one that leaves it raises ``PathEscapeError``)."""
    if isinstance(image, (str, os.PathLike)) and root is not None:
        from adamllm.io import resolve_under

        return resolve_under(root, image)
    return image


def _load_images(images: Sequence[Any], root: str | os.PathLike | None) -> list:
    """A sample's images as RGB; one that cannot be read (or leaves ``root``) makes it a ``BadSample``."""
    try:
        return [load_image(img, root) for img in images]
    except (OSError, ValueError) as exc:  # ValueError: adamllm.images.BadImage, PathEscapeError
        raise BadSample(f"unreadable image: {exc}") from exc


def local_checkpoint(model: str, revision: str | None = None) -> Path:
    """A local directory for a hub id or a directory (the hub is asked only for an id)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(model, revision=revision,
                                  allow_patterns=["*.json", "*.jinja", "*.safetensors", "*.model", "*.txt"]))


causal_lm = unwrap_model  # the name the family modules use


def _compact(sample: dict) -> dict:
    """Integer tensors in the smallest dtype that holds their values (``restore_sample`` undoes it)."""
    out = {}
    for key, value in sample.items():
        if isinstance(value, torch.Tensor) and not value.is_floating_point() and value.numel():
            fits_int8 = int(value.min()) >= -128 and int(value.max()) <= 127
            value = value.to(torch.int8 if fits_int8 else torch.int32)
        out[key] = value
    return out


def _pad(rows: list[torch.Tensor], value: int, side: str) -> torch.Tensor:
    width = max(row.shape[0] for row in rows)
    out = torch.full((len(rows), width), value, dtype=rows[0].dtype)
    for i, row in enumerate(rows):
        if side == "right":
            out[i, : row.shape[0]] = row
        else:
            out[i, width - row.shape[0]:] = row
    return out


class VisionLanguageAdapter:
    """Load, encode, collate, generate and save one image-text model family.

    Subclasses set the class attributes and, where the family needs it, override
    ``_process`` (the processor call) and ``_collate_images`` (batching image tensors).
    """

    family: ClassVar[str] = ""
    image_token: ClassVar[str] = ""            # the placeholder the template writes for an image
    end_of_text_token: ClassVar[str] = ""      # appended and trained under ``after_first_turn``
    group_prefixes: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: The processor outputs that depend on the images only: ``encode_all`` drops them from the
    #: samples it keeps (pixels are most of a sample's memory) and ``collate`` recomputes them.
    pixel_keys: ClassVar[tuple[str, ...]] = ("pixel_values",)
    default_modules_to_save: ClassVar[tuple[str, ...]] = ()
    #: Whether ``collate_packed`` is correct for this family (see ``packing.py``): the language
    #: model uses self-attention only, so samples packed in one row can be kept apart.
    supports_packing: ClassVar[bool] = False
    #: The checkpoint ``model_type`` values the adapter loads (empty: any that contains the family name).
    model_types: ClassVar[tuple[str, ...]] = ()
    #: The system message put before every evaluation prompt (None: none is added; the chat
    #: template's own default applies), as the reference code prompts the family (docs/backbones.md).
    evaluation_system_message: ClassVar[str | None] = None

    def __init__(self, config: BackboneConfig | None = None, *, model: Any = None, processor: Any = None) -> None:
        self.config = config or BackboneConfig(model="")
        self.max_length = self.config.max_length
        self._model, self._processor = model, processor

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, model: str | os.PathLike, **options: Any) -> "VisionLanguageAdapter":
        return cls(BackboneConfig(model=str(model), **options))

    @property
    def model(self):
        if self._model is None:
            self._model = self._load_model()
        return self._model

    @model.setter
    def model(self, value) -> None:
        self._model = value

    @property
    def processor(self):
        if self._processor is None:
            self._processor = self._load_processor()
        return self._processor

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    def _load_model(self):
        from transformers import AutoModelForImageTextToText

        cfg = self.config
        kwargs: dict[str, Any] = {"trust_remote_code": cfg.trust_remote_code, "revision": cfg.revision}
        kwargs["dtype"] = "auto" if cfg.dtype == "auto" else _DTYPES[cfg.dtype]
        if cfg.attn_implementation:
            kwargs["attn_implementation"] = cfg.attn_implementation
        if cfg.device == "auto":
            kwargs["device_map"] = "auto"
        self._checked_checkpoint()
        model = safe_from_pretrained(AutoModelForImageTextToText.from_pretrained, cfg.model,
                                     bool(getattr(cfg, "allow_pickle_weights", False)), **kwargs)
        model_type = model.config.model_type
        if not family_matches(self.family, model_type, self.model_types):
            raise CheckpointError(
                f"{cfg.model} is a {model_type!r} checkpoint, not {self.family!r}: "
                f"select the matching backbone type"
            )
        if cfg.device != "auto":
            model.to(cfg.device)
        return model

    def model_source(self) -> str:
        """The checkpoint folder the model loads from, checked as loading checks it (family,
        safetensors): what another engine (vLLM) is pointed at."""
        return str(self._checked_checkpoint())

    def fresh_model(self):
        """A new copy of the checkpoint's model, not kept by the adapter (sharded training loads its
        gathered weights into one to save them)."""
        return self._load_model()

    def _checked_checkpoint(self) -> Path:
        """The local checkpoint folder, checked before the processor or the weights load from it: its
        config's ``model_type`` is this family's, and its weights are safetensors unless the config
        sets ``allow_pickle_weights`` (``adamllm.backbones.checkpoints``)."""
        cfg = self.config
        folder = local_checkpoint(cfg.model, cfg.revision)
        if not getattr(self, "_checkpoint_ok", False):
            check_family(folder, cfg.model, self.family, self.model_types)
            check_weights(folder, cfg.model, bool(getattr(cfg, "allow_pickle_weights", False)))
            self._checkpoint_ok = True
        return folder

    def _load_processor(self):
        from .processors import load_processor

        processor = load_processor(self.family, self._checked_checkpoint())
        self._apply_pixel_budget(processor.image_processor)
        return processor

    def _apply_pixel_budget(self, image_processor) -> None:
        if self.config.min_pixels is not None or self.config.max_pixels is not None:
            raise ValueError(f"min_pixels/max_pixels apply to the Qwen-VL families (qwen2_vl, qwen2_5_vl, "
                             f"qwen3_vl) only, not {self.family}")

    def use_evaluation_settings(self) -> dict:
        """Switch to the family's evaluation settings and return every setting that shapes an
        evaluation prompt: ``system_message`` (the Qwen-VL families add their image budget). The
        evaluation loop calls it before generating and records the result in ``run.json`` and the
        report; it loads nothing."""
        return {"system_message": self.evaluation_system_message}

    @property
    def image_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.image_token)

    # -- encoding ------------------------------------------------------------------------
    def render(self, messages: Sequence[dict], add_generation_prompt: bool = False) -> str:
        return self.processor.apply_chat_template(
            to_content_list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def _label_spans(self, messages: Sequence[dict], text: str, policy: LabelPolicy) -> list[tuple[int, int]]:
        """Character spans of ``text`` that carry labels under ``policy``."""
        ends = []
        for k in range(1, len(messages) + 1):
            prefix = self.render(messages[:k]) if k < len(messages) else text
            if not text.startswith(prefix):
                raise TemplateError(
                    f"the {self.family} chat template does not render message {k} as a prefix of the "
                    f"conversation; labels cannot be placed"
                )
            ends.append(len(prefix))
        if policy == "after_first_turn":
            first_answer = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), None)
            if first_answer is None or first_answer == len(messages) - 1:
                return []
            return [(ends[first_answer], len(text))]
        if policy != "assistant":
            raise ValueError(f"unknown label policy {policy!r}")
        spans = []
        for i, message in enumerate(messages):
            if message["role"] == "assistant":
                head = self.render(messages[:i], add_generation_prompt=True) if i else ""
                if not text.startswith(head):
                    raise TemplateError(f"the {self.family} generation prompt is not a prefix of the reply")
                spans.append((len(head), ends[i]))
        return spans

    def _process(self, text: str, images: list) -> dict:
        """Run the processor on one sample (families that nest images override this)."""
        return dict(self.processor(text=[text], images=images or None, add_special_tokens=False,
                                   return_tensors="pt"))

    def encode(self, messages: Sequence[dict], images: Sequence[Any] = (), policy: LabelPolicy = "assistant",
               add_generation_prompt: bool = False, image_root: str | os.PathLike | None = None) -> dict:
        """One sample as model inputs (batch dimension 1 removed) with ``labels``.

        Raises ``SampleTooLong`` (never truncates) and ``ValueError`` when the number of images does
        not match the ``<image>`` placeholders.
        """
        n_placeholders = count_images(messages)
        if n_placeholders != len(images):
            raise BadSample(f"{n_placeholders} <image> placeholders but {len(images)} images")
        pil_images = _load_images(images, image_root)
        text, plain_ids, plain_labels = self.plain_tokens(messages, policy, add_generation_prompt)
        # the labels carried over to the processor's output, where each placeholder became N image tokens
        inputs = self._process(text, pil_images)
        ids = inputs["input_ids"][0]
        labels = self._expand_labels(plain_ids, plain_labels, ids.tolist())
        if ids.shape[0] > self.max_length:
            raise SampleTooLong(int(ids.shape[0]), self.max_length)
        sample = {k: (v[0] if k in ("input_ids", "attention_mask", "mm_token_type_ids", "cross_attention_mask")
                      else v) for k, v in inputs.items()}
        sample["labels"] = torch.tensor(labels, dtype=torch.long)
        sample["num_image_tokens"] = int((ids == self.image_token_id).sum())
        return sample

    def plain_tokens(self, messages: Sequence[dict], policy: LabelPolicy = "assistant",
                     add_generation_prompt: bool = False) -> tuple[str, list[int], list[int]]:
        """The rendered text, its token ids with one placeholder token per image, and their labels
        (``IGNORE_INDEX`` outside the trained spans): ``encode`` before the images are expanded."""
        text = self.render(messages, add_generation_prompt=add_generation_prompt)
        train_eos = policy == "after_first_turn" and not add_generation_prompt
        if train_eos:
            text += self.end_of_text_token
        spans = [] if add_generation_prompt else self._label_spans(messages, text, policy)
        if train_eos and spans:
            spans[-1] = (spans[-1][0], len(text))
        plain = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        labels = [token if any(a <= start < b for a, b in spans) else IGNORE_INDEX
                  for token, (start, _end) in zip(plain["input_ids"], plain["offset_mapping"])]
        return text, list(plain["input_ids"]), labels

    def encode_all(self, records: Iterable[dict], policy: LabelPolicy = "assistant",
                   image_root: str | os.PathLike | None = None, max_problems: int = 20,
                   keep_pixels: bool = False, image_check: str | None = "decode") -> EncodedSet:
        """Encode ``{"messages", "images"}`` records; too long or bad ones are dropped and counted.

        Unless ``keep_pixels``, the kept samples hold token tensors and image references only; the
        pixel tensors are recomputed per batch by ``collate`` (bit-identical, about 1-2% of a
        training step), so memory does not grow with the number of images. Integer tensors are
        kept in the smallest dtype that holds them (about 10 instead of 32 bytes per token) and
        widened again by ``collate``.

        Without pixels the processor is not run at all (``header_encoding``): image tokens are
        counted from each image's size, checked against a full ``encode`` on the first sample with
        images (full encoding for every record when they differ). ``image_check``: ``decode``
        (each image decoded and checked, as ``encode`` does), ``header`` (only its header read) or
        None (the processor on every image, as before).
        """
        from .header_encoding import encode_from_headers, same_sample

        result = EncodedSet()
        # None: not checked yet; never for a family without images (its own encode refuses them)
        headers: bool | None = None if image_check and not keep_pixels and self.pixel_keys else False
        token_types = False
        for index, record in enumerate(records):
            images = list(record.get("images") or [])
            try:
                sample = None
                if images and headers:
                    sample = encode_from_headers(self, record["messages"], images, policy, image_root,
                                                 check=image_check, token_types=token_types)
                if sample is None:
                    sample = self.encode(record["messages"], images, policy, image_root=image_root)
                    if images and headers is None:  # the first: the header encoding must equal it
                        token_types = "mm_token_type_ids" in sample
                        header = encode_from_headers(self, record["messages"], images, policy, image_root,
                                                     check=image_check, token_types=token_types)
                        headers = result.header_encoded = (
                            header is not None and same_sample(header, sample, self.pixel_keys))
                if images and not keep_pixels:
                    for key in self.pixel_keys:
                        sample.pop(key, None)
                    sample["image_refs"] = (images, image_root)
                sample = _compact(sample)
            except SampleTooLong as exc:
                reason, message = "too_long", str(exc)
            except BadSample as exc:
                reason, message = "bad_record", str(exc)
            else:
                result.samples.append(sample)
                result.indices.append(index)
                continue
            result.dropped[reason] += 1
            result.rejected.append((index, reason, message))
            if len(result.problems) < max_problems:
                result.problems.append(f"record {record.get('id', index)}: {message}")
        return result

    def consumed_image_tokens(self, sample: dict) -> int | None:
        """How many image-token embeddings the model computes for this sample (None: unknown)."""
        return None

    def _expand_labels(self, plain_ids: list[int], plain_labels: list[int], expanded: list[int]) -> list[int]:
        image_id = self.image_token_id
        labels, j = [], 0
        for i, token in enumerate(plain_ids):
            if token == image_id:
                if i + 1 < len(plain_ids) and plain_ids[i + 1] == image_id:
                    raise ValueError("two images directly adjacent in the text are not supported")
                start = j
                while j < len(expanded) and expanded[j] == image_id:
                    j += 1
                if j == start:
                    raise ValueError("the processor dropped an image placeholder")
                labels += [IGNORE_INDEX] * (j - start)
                continue
            if j >= len(expanded) or expanded[j] != token:
                raise ValueError(f"processor and tokenizer disagree at token {i} of the {self.family} sample")
            labels.append(plain_labels[i])
            j += 1
        if j != len(expanded):
            raise ValueError(f"the processor added {len(expanded) - j} tokens the tokenizer did not")
        return labels

    # -- batching ------------------------------------------------------------------------
    def _image_inputs(self, images: list) -> dict:
        """The image processor's tensors for one sample's images (families that nest override)."""
        return dict(self.processor.image_processor(images=images, return_tensors="pt"))

    def restore_sample(self, sample: dict) -> dict:
        """A sample as ``encode`` returned it, from the compact form ``encode_all`` keeps: integer
        tensors back to int64, pixel tensors recomputed from the image references."""
        restored = {k: v.long() if isinstance(v, torch.Tensor) and not v.is_floating_point() and v.dtype != torch.long
                    else v for k, v in sample.items() if k != "image_refs"}
        if "image_refs" in sample:
            images, root = sample["image_refs"]
            features = self._image_inputs([load_image(image, root) for image in images])
            restored.update({key: features[key] for key in self.pixel_keys})
        return restored

    def collate(self, samples: Sequence[dict], padding_side: str = "right") -> dict:
        """Pad a list of ``encode`` outputs into a batch (right for training, left for generation)."""
        samples = [self.restore_sample(s) for s in samples]
        pad_id = self.tokenizer.pad_token_id
        batch = {
            "input_ids": _pad([s["input_ids"] for s in samples], pad_id, padding_side),
            "attention_mask": _pad([s["attention_mask"] for s in samples], 0, padding_side),
        }
        if all("labels" in s for s in samples):
            batch["labels"] = _pad([s["labels"] for s in samples], IGNORE_INDEX, padding_side)
        batch.update(self._collate_images(samples, padding_side))
        return batch

    def _collate_images(self, samples: Sequence[dict], padding_side: str) -> dict:
        raise NotImplementedError

    def collate_packed(self, samples: Sequence[dict]) -> dict:
        """The samples packed end to end into one row, without padding (train with
        ``packing.packed_attention`` enabled). Same loss and gradients as ``collate``'s padded batch:
        positions restart per sample and each sample's first label is ignored, so no token predicts
        or attends to another sample."""
        if not self.supports_packing:
            raise NotImplementedError(f"{self.family} batches cannot be packed; use collate")
        samples = [self.restore_sample(s) for s in samples]
        labels = []
        for sample in samples:
            row = sample["labels"].clone()
            row[0] = IGNORE_INDEX  # the previous sample's last position must not predict this token
            labels.append(row)
        batch = {
            "input_ids": torch.cat([s["input_ids"] for s in samples])[None],
            "labels": torch.cat(labels)[None],
            "position_ids": torch.cat([self._positions(s) for s in samples], dim=-1),
        }
        batch.update(self._collate_packed_images(samples))
        return batch

    def packed_training(self, model) -> contextlib.AbstractContextManager:
        """A context in which ``model`` (the ``*ForConditionalGeneration`` module) trains on rows
        from ``collate_packed``: causal attention within each packed sample (``packing.py``)."""
        if not self.supports_packing:
            raise NotImplementedError(f"{self.family} batches cannot be packed")
        from .packing import packed_attention

        return packed_attention(model)

    def training_kernels(self, model) -> contextlib.AbstractContextManager:
        """A context in which ``model`` (the ``*ForConditionalGeneration`` module) trains with faster,
        numerically equivalent kernels where the family has any; the model is unchanged after it."""
        return contextlib.nullcontext()

    def _collate_packed_images(self, samples: Sequence[dict]) -> dict:
        """The image inputs of a packed row (families with per-token image inputs override)."""
        return self._collate_images(samples, "right")

    def _positions(self, sample: dict) -> torch.Tensor:
        """One sample's position ids in a packed row (families with their own scheme override)."""
        return torch.arange(sample["input_ids"].shape[0])[None]

    # -- generation ----------------------------------------------------------------------
    def stop_token_ids(self) -> list[int]:
        tok = self.tokenizer
        ids = {tok.eos_token_id}
        for token in (self.end_of_text_token,):
            token_id = tok.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != tok.unk_token_id:
                ids.add(token_id)
        return sorted(i for i in ids if i is not None)

    @torch.no_grad()
    def generate(self, conversations: Sequence[Sequence[dict]], images: Sequence[Sequence[Any]] | None = None,
                 settings: GenerationSettings | None = None, image_root: str | os.PathLike | None = None) -> list[str]:
        """Answer each conversation (its last message is the user's); returns text per sample."""
        settings = settings or GenerationSettings()
        images = images if images is not None else [[] for _ in conversations]
        if self.config.engine == "vllm":
            from . import vllm_engine

            texts = [self.render(c, add_generation_prompt=True) for c in conversations]
            return vllm_engine.generate(self, texts, images, settings, self.stop_token_ids(), image_root)
        encoded = [self.encode(c, imgs, add_generation_prompt=True, image_root=image_root)
                   for c, imgs in zip(conversations, images)]
        return self._generate_encoded(encoded, settings, self.stop_token_ids())

    def encode_prompt(self, text: str, images: Sequence[Any] = (),
                      image_root: str | os.PathLike | None = None, add_bos: bool = False) -> dict:
        """One already rendered prompt (the chat template applied, one ``image_token`` per image)
        as model inputs, without labels. ``add_bos`` puts the tokenizer's BOS token in front, as a
        tokenizer that adds its special tokens would (the released synthesizer's prompts). Raises
        ``BadSample`` / ``SampleTooLong`` like ``encode``."""
        text = self.checked_prompt(text, images, add_bos)
        pil_images = _load_images(images, image_root)
        inputs = self._process(text, pil_images)
        ids = inputs["input_ids"][0]
        if ids.shape[0] > self.max_length:
            raise SampleTooLong(int(ids.shape[0]), self.max_length)
        sample = {k: (v[0] if k in ("input_ids", "attention_mask", "mm_token_type_ids", "cross_attention_mask")
                      else v) for k, v in inputs.items()}
        sample["num_image_tokens"] = int((ids == self.image_token_id).sum())
        return sample

    def checked_prompt(self, text: str, images: Sequence[Any] = (), add_bos: bool = False) -> str:
        """A rendered prompt as either engine takes it: one ``image_token`` per image (else
        ``BadSample``), the tokenizer's BOS token in front when ``add_bos``."""
        n_placeholders = text.count(self.image_token) if self.image_token else 0
        if n_placeholders != len(images):
            raise BadSample(f"{n_placeholders} {self.image_token} tokens in the prompt but {len(images)} images")
        if add_bos:
            bos = self.tokenizer.bos_token
            if not bos:
                raise BadSample(f"the {self.family} tokenizer has no BOS token to add")
            text = bos + text
        return text

    @torch.no_grad()
    def generate_from_text(self, prompts: Sequence[str], images: Sequence[Sequence[Any]] | None = None,
                           settings: GenerationSettings | None = None, stop_tokens: Sequence[str] | None = None,
                           image_root: str | os.PathLike | None = None, add_bos: bool = False) -> list[str]:
        """Continue each rendered prompt (e.g. one ending in an opened user turn); returns the new
        text per prompt. ``stop_tokens`` (token strings) end generation instead of the usual stop
        tokens (``stop_token_ids``), e.g. only the end-of-text token so that a synthesizer writes
        several turns; ``add_bos`` as in ``encode_prompt``."""
        settings = settings or GenerationSettings()
        images = images if images is not None else [[] for _ in prompts]
        eos = self.stop_token_ids() if stop_tokens is None else self._token_ids(stop_tokens)
        if self.config.engine == "vllm":
            from . import vllm_engine

            return vllm_engine.generate(self, prompts, images, settings, eos, image_root, add_bos=add_bos)
        encoded = [self.encode_prompt(p, imgs, image_root=image_root, add_bos=add_bos)
                   for p, imgs in zip(prompts, images)]
        return self._generate_encoded(encoded, settings, eos)

    def prompt_length(self, prompt: str | Sequence[dict], images: Sequence[Any] = (),
                      image_root: str | os.PathLike | None = None) -> int | None:
        """The encoded length in tokens of a conversation (as ``generate`` renders it) or of a
        rendered prompt (``generate_from_text``), image tokens included, from the images' sizes
        alone: the engine's sort key. None when it cannot be told cheaply (the engine then sorts
        by text length); a bad image is left for ``generate`` to report."""
        from .prompt_length import encoded_length

        try:
            text = prompt if isinstance(prompt, str) else self.render(prompt, add_generation_prompt=True)
            return encoded_length(self, text, images, image_root)
        except Exception:  # a sort key only: never the place where a sample fails
            return None

    def _token_ids(self, tokens: Sequence[str]) -> list[int]:
        tok, ids = self.tokenizer, set()
        for token in tokens:
            token_id = tok.convert_tokens_to_ids(token)
            if not isinstance(token_id, int) or token_id == tok.unk_token_id:
                raise ValueError(f"{token!r} is not a token of the {self.family} tokenizer")
            ids.add(token_id)
        return sorted(ids)

    def _generate_encoded(self, encoded: list[dict], settings: GenerationSettings, eos_ids: list[int]) -> list[str]:
        batch = self.collate(encoded, padding_side="left")
        batch.pop("labels", None)
        model = self.model
        device = next(model.parameters()).device
        batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
        kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "min_new_tokens": settings.min_new_tokens or None,
            "do_sample": settings.do_sample,
            "eos_token_id": eos_ids,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if settings.do_sample:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        was_training = model.training
        model.eval()
        output = model.generate(**batch, **kwargs)
        model.train(was_training)
        new_tokens = output[:, batch["input_ids"].shape[1]:]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=not settings.keep_special_tokens)
        if settings.keep_special_tokens:  # drop the padding after an early stop, keep the rest
            pad = self.tokenizer.pad_token
            texts = [t.replace(pad, "") if pad else t for t in texts]
        return [_cut_at_stop(t, settings.stop_strings) for t in texts]

    # -- module groups, LoRA, saving ------------------------------------------------------
    def module_groups(self) -> dict[str, list[str]]:
        """Group name -> names of the parameters in it (every parameter in exactly one group)."""
        groups: dict[str, list[str]] = {g: [] for g in GROUPS}
        for name, _ in self.model.named_parameters():
            groups[self.group_of(name)].append(name)
        return groups

    def group_of(self, parameter_name: str) -> str:
        name = parameter_name.removeprefix("base_model.model.")
        best, best_len = None, -1
        for group, prefixes in self.group_prefixes.items():
            for prefix in prefixes:
                if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best_len:
                    best, best_len = group, len(prefix)
        if best is None:
            raise KeyError(f"parameter {parameter_name!r} belongs to no module group of {self.family}")
        return best

    def freeze(self, groups: Sequence[str]) -> int:
        """Freeze the parameters of ``groups``; returns how many tensors were frozen."""
        unknown = set(groups) - set(GROUPS)
        if unknown:
            raise ValueError(f"unknown module group(s) {sorted(unknown)}; groups: {', '.join(GROUPS)}")
        frozen = 0
        for name, param in self.model.named_parameters():
            if self.group_of(name) in groups:
                param.requires_grad_(False)
                frozen += 1
        return frozen

    def lora_target_modules(self) -> str:
        """Regex over module names: the language model's linear projections only."""
        return rf".*language_model.*\.({'|'.join(LORA_PROJECTIONS)})"

    def save(self, out_dir: str | os.PathLike) -> Path:
        """A complete, reloadable directory: safetensors weights, processor, tokenizer, chat template;
        ``transformers.AutoProcessor.from_pretrained`` loads it, with or without torchvision
        (``adamllm.backbones.processors``)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out, safe_serialization=True)
        self.tokenizer.save_pretrained(out)
        self.processor.save_pretrained(out)  # last: a processor may complete the tokenizer's config
        template = self.processor.chat_template or self.tokenizer.chat_template
        if template and not (out / "chat_template.jinja").exists():
            (out / "chat_template.jinja").write_text(template, encoding="utf-8")
        return out


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cut = len(text)
    for stop in stops:
        index = text.find(stop)
        if index != -1:
            cut = min(cut, index)
    return text[:cut]


def pad_dim(tensors: list[torch.Tensor], dim: int, value: float = 0) -> list[torch.Tensor]:
    """Pad tensors along ``dim`` to the same size (image/tile dimensions of a batch)."""
    size = max(t.shape[dim] for t in tensors)
    out = []
    for t in tensors:
        if t.shape[dim] < size:
            shape = list(t.shape)
            shape[dim] = size - t.shape[dim]
            t = torch.cat([t, torch.full(shape, value, dtype=t.dtype)], dim=dim)
        out.append(t)
    return out


