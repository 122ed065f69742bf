"""The ``sft`` trainer: post-train a backbone on a mix of conversations, with accelerate.

Read top to bottom, ``SFTTrainer.train`` is the whole recipe: encode every record once (too-long
and bad records dropped and counted), prepare the model (freeze, LoRA, checkpointing), then for
each stage (one, or captions then tasks with ``two_stage``) build the optimizer and schedule and
loop over batches (packed into one row without padding where the backbone family allows it, else
padded and grouped by length), checkpointing every ``save_every`` steps; finally save a
complete model directory, a summary and a loss curve. One process on CPU; DDP/FSDP/DeepSpeed
through the user's accelerate config on GPUs.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from adamllm.backbones.packing import packed_attention

from .batching import epoch_batches, padding_fraction, real_tokens, shard
from .checkpoint import TrainState, latest_checkpoint, load_checkpoint, read_state, save_checkpoint
from .config import SFTConfig
from .data import load_records
from .loss import LabelledLM, causal_lm


class TrainerError(RuntimeError):
    pass


def check_qlora_available() -> None:
    if not torch.cuda.is_available():
        raise TrainerError("mode 'qlora' needs a CUDA GPU (4-bit bitsandbytes kernels); on this machine use "
                           "mode: lora (same adapters, unquantised base)")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise TrainerError("mode 'qlora' needs bitsandbytes: pip install bitsandbytes")


class SFTTrainer:
    def __init__(self, config: SFTConfig | None = None) -> None:
        self.config = config or SFTConfig()

    # -- the train stage of `adamllm run` ------------------------------------------------
    def run(self, ctx) -> dict:
        records, root = load_records(ctx.input_path("compose"), limit=self.config.limit)
        image_root = Path(self.config.image_root) if self.config.image_root else root
        if image_root is not None and not image_root.is_absolute() and ctx.config.source is not None:
            image_root = ctx.config.source.parent / image_root
        return self.train(ctx.backbone(), records, ctx.stage_dir, image_root=image_root,
                          seed=self.config.seed if self.config.seed is not None else ctx.config.seed,
                          resume=not getattr(ctx, "force", False), backbone=ctx.config.backbone.type)

    # -- the recipe ------------------------------------------------------------------------
    def train(self, adapter, records: Sequence[dict], out_dir: str | Path, *, image_root=None, seed: int = 0,
              resume: bool = True, backbone: str = "", stop_after_steps: int | None = None) -> dict:
        """Train ``adapter`` on ``records`` and write everything under ``out_dir``.

        ``stop_after_steps`` ends the run early, as a crash would, after that many optimizer steps
        of this invocation (to test resuming); the checkpoint written there is what a resume uses.
        """
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        cfg = self.config
        out = Path(out_dir)
        if cfg.mode == "qlora":
            check_qlora_available()
            self._load_quantized(adapter)
        accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=cfg.mixed_precision,
                                  log_with=cfg.trackers or None, project_dir=str(out))
        set_seed(seed)
        checkpoints = out / "checkpoints"
        if not resume and accelerator.is_main_process:
            shutil.rmtree(checkpoints, ignore_errors=True)
        accelerator.wait_for_everyone()

        started = time.time()
        encoded = adapter.encode_all(records, cfg.label_policy, image_root=image_root)
        if not encoded.samples:
            raise TrainerError(f"no trainable sample among {len(records)} records (dropped: {dict(encoded.dropped)}; "
                               f"{'; '.join(encoded.problems[:3])})")
        encode_seconds = time.time() - started
        samples = encoded.samples
        lengths = [int(s["input_ids"].shape[0]) for s in samples]
        stage_indices = self._stages([records[i] for i in encoded.indices])
        # packed rows when the family allows it (no padding at all), else length-grouped padded batches
        packed = cfg.packing and adapter.supports_packing
        group_by_length = cfg.group_by_length if cfg.group_by_length is not None else not packed
        collate = adapter.collate_packed if packed else adapter.collate

        model = self._prepare_model(adapter)
        wrapped = LabelledLM(model, cfg.head_on_labels_only)
        if cfg.trackers:
            accelerator.init_trackers("adamllm", config=json.loads(cfg.model_dump_json()))

        state = TrainState()
        resume_from = latest_checkpoint(checkpoints) if resume else None
        summary: dict[str, Any] = {"records": len(records), "samples": len(samples),
                                   "dropped": dict(encoded.dropped), "drop_examples": encoded.problems[:5],
                                   "encode_seconds": round(encode_seconds, 3), "resumed_from": None}
        tokens = 0
        loop_started = time.time()
        steps_this_run = 0
        stopped_early = False
        trained_batches: list[list[int]] = []  # this run's batches, for the padding fraction
        # a checkpoint belongs to one stage: skip the stages before it, load it into that stage's
        # own optimizer and schedule
        resume_stage = read_state(resume_from).stage if resume_from is not None else 0
        # packed-row attention and the family's faster kernels, only while training: the model's
        # config and modules are as loaded again afterwards (for saving and generation)
        with packed_attention(causal_lm(model)) if packed else contextlib.nullcontext(), \
                adapter.training_kernels(causal_lm(model)):
            for stage_index, indices in enumerate(stage_indices):
                if stage_index < resume_stage:
                    continue
                stage_lengths = [lengths[i] for i in indices]
                per_epoch = shard(epoch_batches(stage_lengths, cfg.batch_size, seed=seed + 1000 * stage_index, epoch=0,
                                                group_by_length=group_by_length),
                                  accelerator.process_index, accelerator.num_processes)
                steps_per_epoch = math.ceil(len(per_epoch) / cfg.gradient_accumulation_steps)
                total_steps = cfg.max_steps or math.ceil(steps_per_epoch * cfg.num_epochs)
                optimizer = self._optimizer(adapter, model)
                scheduler = self._scheduler(optimizer, total_steps)
                prepared, optimizer, scheduler = accelerator.prepare(wrapped, optimizer, scheduler)
                if resume_from is not None:
                    state = load_checkpoint(resume_from, accelerator.unwrap_model(prepared).model, optimizer, scheduler)
                    summary["resumed_from"] = str(resume_from)
                    resume_from = None
                progress = _progress(total_steps, state.step, accelerator.is_main_process, stage_index,
                                     len(stage_indices))
                prepared.train()
                while state.step < total_steps and not stopped_early:
                    batches = shard(epoch_batches(stage_lengths, cfg.batch_size, seed=seed + 1000 * stage_index,
                                                  epoch=state.epoch, group_by_length=group_by_length),
                                    accelerator.process_index, accelerator.num_processes)
                    groups = [batches[i:i + cfg.gradient_accumulation_steps]
                              for i in range(0, len(batches), cfg.gradient_accumulation_steps)]
                    for group_index in range(state.batch_in_epoch // cfg.gradient_accumulation_steps, len(groups)):
                        group = groups[group_index]
                        trained_batches += [[indices[i] for i in b] for b in group]
                        micro_batches = (collate([samples[indices[i]] for i in ids]) for ids in group)
                        loss_value, group_tokens = self._optimizer_step(accelerator, prepared, optimizer, scheduler,
                                                                        micro_batches, len(group))
                        tokens += group_tokens
                        state.step += 1
                        steps_this_run += 1
                        state.batch_in_epoch = (group_index + 1) * cfg.gradient_accumulation_steps
                        lr = scheduler.get_last_lr()[0]
                        state.losses.append([state.step, loss_value, lr])
                        if cfg.trackers:
                            accelerator.log({"loss": loss_value, "lr": lr}, step=state.step)
                        elapsed = max(time.time() - loop_started, 1e-9)
                        progress.update(1)
                        progress.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens / elapsed:.0f}")
                        done = state.step >= total_steps
                        stop = stop_after_steps is not None and steps_this_run >= stop_after_steps
                        if (cfg.save_every and state.step % cfg.save_every == 0) or stop:
                            self._checkpoint(accelerator, prepared, optimizer, scheduler, state, checkpoints)
                        if done or stop:
                            stopped_early = stop and not done
                            break
                    if state.step >= total_steps or stopped_early:
                        break
                    state.epoch += 1
                    state.batch_in_epoch = 0
                progress.close()
                if stopped_early:
                    break
                if stage_index + 1 < len(stage_indices):  # the next stage starts a fresh schedule
                    state = TrainState(stage=stage_index + 1, losses=state.losses)

        seconds = time.time() - loop_started
        summary.update({
            "steps": state.step, "stages": len(stage_indices), "epochs_started": state.epoch + 1,
            "first_loss": state.losses[0][1] if state.losses else None,
            "final_loss": state.losses[-1][1] if state.losses else None,
            "packing": packed, "group_by_length": group_by_length,
            "padding_fraction": (0.0 if packed else round(padding_fraction(lengths, trained_batches), 4))
            if trained_batches else None,
            "train_seconds": round(seconds, 3), "tokens_per_second": round(tokens / max(seconds, 1e-9), 1),
            "processes": accelerator.num_processes, "completed": not stopped_early,
        })
        accelerator.wait_for_everyone()
        if cfg.trackers:
            accelerator.end_training()
        if accelerator.is_main_process:
            self._write_outputs(adapter, accelerator.unwrap_model(prepared).model, out, state, summary, backbone)
        accelerator.wait_for_everyone()
        return summary

    # -- pieces ----------------------------------------------------------------------------
    def _stages(self, records: Sequence[dict]) -> list[list[int]]:
        if not self.config.two_stage:
            return [list(range(len(records)))]
        stages = [[i for i, r in enumerate(records) if r.get("stage") == s] for s in (1, 2)]
        missing = [str(r.get("id")) for r in records if r.get("stage") not in (1, 2)]
        if missing:
            raise TrainerError(f"two_stage needs 'stage': 1 or 2 on every record; missing on records {missing[:5]}")
        if not all(stages):
            raise TrainerError("two_stage needs records of both stage 1 (captions) and stage 2 (tasks)")
        return stages

    def _load_quantized(self, adapter) -> None:  # pragma: no cover - needs a GPU
        from peft import prepare_model_for_kbit_training
        from transformers import AutoModelForImageTextToText, BitsAndBytesConfig

        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForImageTextToText.from_pretrained(
            adapter.config.model, quantization_config=quant, revision=adapter.config.revision,
            trust_remote_code=adapter.config.trust_remote_code, dtype=torch.bfloat16, device_map={"": 0})
        adapter.model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=self.config.gradient_checkpointing)

    def _prepare_model(self, adapter):
        cfg = self.config
        model = adapter.model
        if cfg.freeze:
            adapter.freeze(cfg.freeze)
        if cfg.mode in ("lora", "qlora"):
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                              target_modules=cfg.lora.target_modules or adapter.lora_target_modules(),
                              modules_to_save=cfg.lora.modules_to_save or None)
            model = get_peft_model(model, lora)
            adapter.model = model
        if cfg.gradient_checkpointing:
            with _quiet_future_warnings():
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if cfg.mode != "full":
                model.enable_input_require_grads()
        model.train()
        return model

    def _optimizer(self, adapter, model):
        cfg = self.config
        groups: dict[tuple[str, bool], list] = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            decay = param.ndim >= 2 and "norm" not in name.lower()
            groups.setdefault((adapter.group_of(name), decay), []).append(param)
        if not groups:
            raise TrainerError("no trainable parameters (check freeze and mode)")
        param_groups = [
            {"params": params, "lr": cfg.group_learning_rates.get(group, cfg.learning_rate),
             "weight_decay": cfg.weight_decay if decay else 0.0, "name": f"{group}{'' if decay else '_no_decay'}"}
            for (group, decay), params in sorted(groups.items())
        ]
        # the fused kernel is several times faster than the per-tensor loop, on CPU too
        fused = all(p.dtype.is_floating_point and p.device.type in ("cpu", "cuda")
                    for group in param_groups for p in group["params"])
        return torch.optim.AdamW(param_groups, lr=cfg.learning_rate, fused=fused or None)

    def _optimizer_step(self, accelerator, prepared, optimizer, scheduler, micro_batches, n_micro: int):
        """Forward and backward over the micro-batches of one accumulation group (gradients synced
        on the last only), then one optimizer and schedule step. Returns the group's mean loss and
        its real (non-padding) tokens."""
        loss_value, tokens = 0.0, 0
        for micro, batch in enumerate(micro_batches):
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            tokens += real_tokens(batch)
            sync = micro == n_micro - 1
            with contextlib.nullcontext() if sync else accelerator.no_sync(prepared):
                with accelerator.autocast():
                    loss, _ = prepared(**batch)
                accelerator.backward(loss / n_micro)
            loss_value += loss.item() / n_micro
        if self.config.max_grad_norm:
            accelerator.clip_grad_norm_(prepared.parameters(), self.config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return loss_value, tokens

    def _scheduler(self, optimizer, total_steps: int):
        from transformers import get_scheduler

        name = {"constant": "constant_with_warmup"}.get(self.config.lr_scheduler, self.config.lr_scheduler)
        warmup = int(math.ceil(self.config.warmup_ratio * total_steps))
        return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)

    def _checkpoint(self, accelerator, prepared, optimizer, scheduler, state, folder: Path) -> None:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            save_checkpoint(folder, accelerator.unwrap_model(prepared).model, optimizer, scheduler, state,
                            self.config.keep_checkpoints)
        accelerator.wait_for_everyone()

    def _write_outputs(self, adapter, model, out: Path, state: TrainState, summary: dict, backbone: str) -> None:
        cfg = self.config
        adapter.model = model
        lora = cfg.mode in ("lora", "qlora")
        if lora:
            adapter.save(out / "adapter")  # the PEFT adapter + processor, tokenizer, chat template
            if cfg.merge_lora:
                adapter.model = model.merge_and_unload()
                adapter.save(out / "model")
        else:
            adapter.save(out / "model")
        info = {"backbone": backbone, "base_model": adapter.config.model, "mode": cfg.mode,
                "model_dir": "model" if (out / "model").exists() else None,
                "adapter_dir": "adapter" if lora else None, "config": json.loads(cfg.model_dump_json())}
        (out / "run_info.json").write_text(json.dumps(info, indent=2))
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        with (out / "loss.jsonl").open("w") as handle:
            for step, loss, lr in state.losses:
                handle.write(json.dumps({"step": step, "loss": loss, "lr": lr}) + "\n")
        plot_loss_curve(state.losses, out / "loss_curve.png")


def plot_loss_curve(losses: list[list[float]], path: Path) -> None:
    if not losses:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([s for s, _, _ in losses], [loss for _, loss, _ in losses], linewidth=1.2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title("adamllm sft: training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _progress(total: int, done: int, enabled: bool, stage: int, stages: int):
    from tqdm.auto import tqdm

    desc = "train" if stages == 1 else f"train (stage {stage + 1}/{stages})"
    return tqdm(total=total, initial=done, desc=desc, disable=not enabled, dynamic_ncols=True)


@contextlib.contextmanager
def _quiet_future_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield
