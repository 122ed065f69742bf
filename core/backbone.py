"""What a backbone adapter is: how every stage talks to a model.

The synthesizer generates with an adapter, the trainer trains one, benchmarks evaluate one. The
built-in adapters (``adamllm.backbones``) implement this for Qwen2-VL, LLaVA-NeXT and Mllama;
``adamllm.testing.backbone_contract`` checks any adapter. Import-light: no torch here.

Conversations are ShareGPT style: ``[{"role": "user", "content": "<image>What is this?"},
{"role": "assistant", "content": "A cat."}]`` with the images in order of their ``<image>``
placeholders.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Protocol, Sequence, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

IMAGE_PLACEHOLDER = "<image>"

#: ``assistant``: loss on assistant turns only (post-training).
#: ``after_first_turn``: no loss on the first exchange, loss on every token after it, user turns
#: included, plus the trained end-of-text token (tuning the synthesizer, METHOD.md §1).
LabelPolicy = Literal["assistant", "after_first_turn"]

#: Module groups every adapter names, for freezing, per-group learning rates and LoRA targets.
GROUPS = ("vision", "projector", "language")


class SampleTooLong(ValueError):
    """A sample is longer than ``max_length``: dropped and counted, never cut through image tokens."""

    def __init__(self, length: int, max_length: int) -> None:
        self.length, self.max_length = length, max_length
        super().__init__(f"sample has {length} tokens, more than max_length={max_length}")


class BackboneConfig(BaseModel):
    """Options every built-in adapter accepts (a backbone section of a run config)."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="Hub id or local directory of the checkpoint.")
    revision: Optional[str] = Field(None, description="Hub revision (branch, tag or commit).")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = Field("float32", description="Weights dtype.")
    device: str = Field("cpu", description="'cpu', 'cuda', 'cuda:1', or 'auto' (device_map=auto).")
    attn_implementation: Optional[str] = Field(None, description="e.g. 'sdpa', 'eager', 'flash_attention_2'.")
    trust_remote_code: bool = Field(False, description="Run code shipped with the checkpoint (off by default).")
    max_length: int = Field(4096, ge=16, description="Longer samples are dropped and counted.")
    tiny: Optional[Literal["tiny", "small"]] = Field(
        None, description="Offline demos/tests: build a random checkpoint of this size at `model` "
                          "(relative to the config file) when that folder does not exist.")
    min_pixels: Optional[int] = Field(None, description="Qwen2-VL: smallest image budget in pixels.")
    max_pixels: Optional[int] = Field(None, description="Qwen2-VL: largest image budget in pixels.")


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
class Backbone(Protocol):
    """The adapter contract (see the built-ins in ``adamllm.backbones.adapter``)."""

    family: str
    model: Any
    processor: Any
    max_length: int

    def encode(self, messages: Sequence[dict], images: Sequence[Any] = (), policy: LabelPolicy = "assistant",
               add_generation_prompt: bool = False) -> dict: ...

    def collate(self, samples: Sequence[dict], padding_side: str = "right") -> dict: ...

    def generate(self, conversations: Sequence[Sequence[dict]], images: Sequence[Sequence[Any]],
                 settings: GenerationSettings | None = None) -> list[str]: ...

    def module_groups(self) -> dict[str, list[str]]: ...

    def lora_target_modules(self) -> str: ...

    def save(self, out_dir: Any) -> Any: ...
