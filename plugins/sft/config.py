"""Options of the ``sft`` trainer (the ``trainer`` section of a run config).

Defaults follow the paper's Qwen2-VL setting where one exists (docs/method.md §7); the presets in
``examples/presets/`` reproduce each backbone's paper setting.

Every number must be finite and in a range that can train (``allow_inf_nan=False``): YAML reads
``1e309`` and ``.inf`` as infinity, and an infinite learning rate, clipping norm or epoch count
passes a plain ``gt=0`` check, then ends in all-NaN weights or a schedule that never ends.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adamllm.paths import LocalPath

Group = Literal["vision", "projector", "language"]


#: Above this an AdamW step moves every weight by about the rate itself: not fine-tuning but noise.
MAX_LEARNING_RATE = 1.0
#: More epochs than any post-training schedule uses; larger values are typos (or ``1e309``).
MAX_EPOCHS = 10_000

LearningRate = Annotated[float, Field(gt=0, le=MAX_LEARNING_RATE)]


class LoraOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: Optional[str | list[str]] = Field(
        None, description="Regex or module names; default: the adapter's language-model projections.")
    modules_to_save: list[str] = Field(default_factory=list, description="Also train these fully, e.g. ['merger'].")


class SFTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    mode: Literal["full", "lora", "qlora"] = Field("full", description="qlora needs a CUDA GPU and bitsandbytes.")
    two_stage: bool = Field(False, description="Stage 1 on records with stage=1 (captions), then stage=2 (tasks).")
    lora: LoraOptions = Field(default_factory=LoraOptions)
    freeze: list[Group] = Field(default_factory=list, description="Module groups kept frozen.")
    learning_rate: float = Field(1e-5, gt=0, le=MAX_LEARNING_RATE)
    group_learning_rates: dict[Group, LearningRate] = Field(
        default_factory=dict, description="Per-group learning rate, e.g. {vision: 2.0e-6} as in the paper.")
    weight_decay: float = Field(0.0, ge=0, le=1)
    warmup_ratio: float = Field(0.03, ge=0, le=1)
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    num_epochs: float = Field(1.0, gt=0, le=MAX_EPOCHS)
    max_steps: Optional[int] = Field(None, ge=1, description="Stop after this many optimizer steps.")
    batch_size: int = Field(1, ge=1, description="Per device.")
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_grad_norm: Optional[float] = Field(1.0, gt=0)
    gradient_checkpointing: bool = False
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    label_policy: Literal["assistant", "after_first_turn"] = "assistant"
    head_on_labels_only: bool = Field(
        True, description="Apply the LM head and loss only at labelled positions (same loss, less compute).")
    packing: bool = Field(
        True, description="Pack each batch's samples into one row without padding, where the backbone family "
                          "allows it (qwen2_vl, llava_next; not mllama, whose cross-attention would span samples).")
    group_by_length: Optional[bool] = Field(
        None, description="Batch samples of similar length (little padding); default: on for padded batches, "
                          "off when packing (a packed row has no padding to save).")
    image_root: Optional[LocalPath] = Field(
        None, description="Images resolve here (relative to the config file; data.train.images says the same); "
                          "default: the data file's folder, then its sibling images/ folder.")
    image_check: Literal["decode", "header", "processor"] = Field(
        "decode", description="Before step 1, each image is decoded and checked (decode), only its header read "
                              "(header: nothing decoded before step 1; a file truncated past its header fails when "
                              "its batch is built), or run through the processor as well (processor: the old path). "
                              "Token counts come from image sizes except under processor.")
    dataloader_workers: Optional[int] = Field(
        None, ge=0, le=64, description="Processes that collate batches (decode and process their images) ahead of the "
                                       "step; 0: in the training process; default: half the CPU cores minus one, at most 4.")
    encode_cache: bool = Field(
        True, description="Keep the encoded records in OUT/train/encoded/, reused by a resume or rerun while the "
                          "records, their image files, the tokenizer and these settings are unchanged.")
    streaming: bool = Field(
        False, description="Read and encode each batch's records when the batch is built (in the loader's workers "
                           "where there are any), not all before step 1: time to the first step and memory do not grow "
                           "with the dataset. A bad record is quarantined when its batch meets it and replaced in the "
                           "batch by the next usable one. Not with group_by_length; no duplicate-id check.")
    fsdp: bool = Field(
        False, description="With several processes, shard parameters, gradients and optimizer state over them (FSDP2, "
                           "each decoder layer and vision block a unit): full fine-tuning of models that do not fit "
                           "one device. Checkpoints are sharded too (resume with the same number of processes); the "
                           "final model is gathered whole. One process: no effect.")
    limit: Optional[int] = Field(None, ge=1, description="Use only the first N records (streaming: the first N lines).")
    save_every: Optional[int] = Field(None, ge=1, description="Checkpoint every N optimizer steps.")
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(1, ge=1)
    trackers: list[Literal["tensorboard", "wandb"]] = Field(default_factory=list)
    merge_lora: bool = Field(True, description="Also write the LoRA-merged model to train/model.")
    seed: Optional[int] = Field(None, description="Default: the run's seed.")

    @model_validator(mode="after")
    def _check(self) -> "SFTConfig":
        if set(self.freeze) == {"vision", "projector", "language"} and self.mode == "full":
            raise ValueError("every module group is frozen: nothing would train")
        return self
