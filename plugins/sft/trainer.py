"""The ``sft`` trainer: post-train a backbone on a mix of conversations, with accelerate.

``SFTTrainer.train`` is the recipe, in three steps that read top to bottom:

* ``setup``: build the accelerator, seed, prepare the samples (``samples.py``: every record
  encoded once, too-long and bad records dropped and counted; or, with ``streaming``, nothing read
  or encoded until a batch needs it), split them into stages (one, or captions then tasks with
  ``two_stage``), choose the batching (packed into one row without padding where the backbone
  family allows it, else padded and grouped by length), prepare the model (freeze, LoRA,
  checkpointing) and find the checkpoint to resume from; returns a ``Run``;
* ``train_loop``: for each stage, ``_train_stage`` builds its optimizer and schedule and loops
  over its epochs of batches, checkpointing every ``save_every`` steps;
* ``save``: finish the summary and write a complete model directory, the summary, the loss log
  and a loss curve.

Several processes (``accelerate launch``/``torchrun``): data parallel (DDP) by default; with
``fsdp: true`` the model is sharded with FSDP2 (``fsdp.py``), tested on 2 CPU processes.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from adamllm.backbone import unwrap_model

from . import fsdp
from .batching import epoch_batches, real_tokens, shard
from .checkpoint import (TrainState, latest_checkpoint, load_checkpoint, partial_checkpoint, read_state,
                         reported_writes, save_checkpoint)
from .config import SFTConfig
from .data import training_input
from .loader import default_workers, group_batches
from .loss import LabelledLM
from .numeric import check_grad_norm, check_loss, check_weights, where
from .plots import plot_loss_curve
from .samples import DroppedWhileTraining, TrainerError, encode_ahead, streamed
from .streaming import training_records


def check_qlora_available() -> None:
    if not torch.cuda.is_available():
        raise TrainerError("mode 'qlora' needs a CUDA GPU (4-bit bitsandbytes kernels); on this machine use "
                           "mode: lora (same adapters, unquantised base)")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise TrainerError("mode 'qlora' needs bitsandbytes: pip install bitsandbytes")


@dataclass
class Run:
    """One training run: what ``setup`` builds, then what the training loop advances."""

    accelerator: Any
    seed: int
    make_batch: Callable[[list[int]], dict]  # sample ids to a collated batch
    lengths: list[int] | None       # tokens of each sample (None when streaming: unknown before step 1)
    stage_indices: list[Sequence[int]]  # the samples of each stage
    packed: bool                    # one row per batch without padding (else padded batches)
    group_by_length: bool
    model: Any                      # the prepared model (frozen, LoRA, checkpointing)
    wrapped: LabelledLM             # the model with its loss: what accelerate prepares
    checkpoints: Path
    resume_from: Path | None        # loaded into its own stage's optimizer and schedule, then None
    resume_stage: int               # the stages before it are skipped
    summary: dict[str, Any]
    # advanced by the training loop
    state: TrainState = field(default_factory=TrainState)
    prepared: Any = None            # ``wrapped`` as accelerate prepared it for the current stage
    tokens: int = 0                 # real (non-padding) tokens trained on by this invocation
    padded_tokens: int = 0          # and with the padding: the padding fraction
    steps_this_run: int = 0
    loop_started: float = 0.0
    workers: int = 0                # processes collating batches ahead of the step
    dropped: DroppedWhileTraining | None = None  # streaming: the records set aside while training
    sharded: bool = False           # FSDP2: parameters, gradients and optimizer state split over the processes


class SFTTrainer:
    def __init__(self, config: SFTConfig | None = None) -> None:
        self.config = config or SFTConfig()

    # -- the train stage of `adamllm run` ------------------------------------------------
    def run(self, ctx) -> dict:
        """Images are confined to ``data.train.images`` or ``image_root`` (resolved by the config),
        else to the data file's (or dataset folder's) folder: the composed mix's images are in
        ``OUT/compose/images/``, named relative to the mix's folder. ``data.train``'s ``config``,
        ``data_files`` and ``split`` pick the part of a dataset to load."""
        from adamllm.distributed import launched_rank_zero
        from adamllm.quarantine import Quarantine

        main = launched_rank_zero()  # one process writes rejected.jsonl
        quarantine = ctx.quarantine() if main else Quarantine(None, ctx.config.on_bad_record)
        image_root, dataset = training_input(ctx, self.config.image_root)
        note = lambda message: ctx.echo(f"[{ctx.name}] {message}")  # noqa: E731
        with quarantine:
            records, root = training_records(ctx.input_path(), streaming=self.config.streaming,
                                             quarantine=quarantine, limit=self.config.limit, image_root=image_root,
                                             note=note, **dataset)
            return self.train(ctx.backbone(), records, ctx.stage_dir, image_root=root,
                              seed=self.config.seed if self.config.seed is not None else ctx.config.seed,
                              resume=not ctx.force, backbone=ctx.config.backbone.type, quarantine=quarantine,
                              content_folder=ctx.config.output_dir)

    # -- the recipe ------------------------------------------------------------------------
    def train(self, adapter, records: Sequence[dict], out_dir: str | Path, *, image_root=None, seed: int = 0,
              resume: bool = True, backbone: str = "", stop_after_steps: int | None = None,
              quarantine=None, content_folder: str | Path | None = None) -> dict:
        """Train ``adapter`` on ``records`` and write everything under ``out_dir``.

        Records the backbone cannot encode (too long, unreadable image, placeholders and images
        disagree) are dropped and counted; with a ``quarantine`` each also goes to its
        ``rejected.jsonl`` (or, under ``on_bad_record: error``, stops the run before training).

        ``stop_after_steps`` ends the run early, as a crash would, after that many optimizer steps
        of this invocation (to test resuming); the checkpoint written there is what a resume uses.
        ``content_folder``: where the content cache of the images' sha256 is kept (the run's folder,
        whose cache the stage fingerprint filled; default ``out_dir``).
        """
        out = Path(out_dir)
        run = self.setup(adapter, records, out, image_root=image_root, seed=seed, resume=resume,
                         quarantine=quarantine, content_folder=content_folder)
        stopped_early = self.train_loop(adapter, run, stop_after_steps)
        return self.save(adapter, run, out, backbone, completed=not stopped_early)

    def setup(self, adapter, records: Sequence[dict], out: Path, *, image_root=None, seed: int = 0,
              resume: bool = True, quarantine=None, content_folder: str | Path | None = None) -> Run:
        """Everything before the first batch, in this order: accelerator, seed, the records encoded
        once, the stages and the batching, the prepared model, the checkpoint to resume from."""
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        cfg = self.config
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

        # packed rows when the family allows it (no padding at all), else length-grouped padded batches
        packed = cfg.packing and adapter.supports_packing
        if cfg.streaming and cfg.group_by_length:
            raise TrainerError("group_by_length needs every sample's length before step 1, which streaming does "
                               "not compute; drop one of them")
        group_by_length = cfg.group_by_length if cfg.group_by_length is not None else not (packed or cfg.streaming)
        collate = adapter.collate_packed if packed else adapter.collate
        if cfg.streaming:
            prepared = streamed(cfg, adapter, records, collate, image_root=image_root, quarantine=quarantine)
        else:
            prepared = encode_ahead(cfg, adapter, records, collate, out, image_root=image_root, quarantine=quarantine,
                                    content_folder=content_folder, main_process=accelerator.is_main_process)
        summary = prepared.summary

        model = self._prepare_model(adapter)
        wrapped = LabelledLM(model, cfg.head_on_labels_only)
        sharded = cfg.fsdp and accelerator.num_processes > 1
        if sharded:
            blocks = fsdp.shard(wrapped, model, cfg.mixed_precision)
            held, total = fsdp.held_elements(model)
            summary["fsdp"] = {"blocks": blocks, "held_elements": held, "total_elements": total}
        if cfg.trackers:
            accelerator.init_trackers("adamllm", config=json.loads(cfg.model_dump_json()))

        resume_from = latest_checkpoint(checkpoints) if resume else None
        summary["resumed_from"] = None
        # a checkpoint belongs to one stage: the stages before it are skipped
        resume_stage = read_state(resume_from).stage if resume_from is not None else 0
        workers = cfg.dataloader_workers if cfg.dataloader_workers is not None else default_workers()
        summary["dataloader_workers"] = workers
        return Run(accelerator=accelerator, seed=seed, make_batch=prepared.make_batch, lengths=prepared.lengths,
                   stage_indices=prepared.stage_indices, packed=packed, group_by_length=group_by_length,
                   model=model, wrapped=wrapped, checkpoints=checkpoints, resume_from=resume_from,
                   resume_stage=resume_stage, summary=summary, workers=workers,
                   dropped=DroppedWhileTraining(quarantine) if cfg.streaming else None, sharded=sharded)

    def train_loop(self, adapter, run: Run, stop_after_steps: int | None = None) -> bool:
        """Train the stages in order, from the one being resumed; True when ``stop_after_steps``
        stopped the run early."""
        run.loop_started = time.time()
        base = unwrap_model(run.model)
        # packed-row attention and the family's faster kernels, only while training: the model's
        # config and modules are as loaded again afterwards (for saving and generation)
        with adapter.packed_training(base) if run.packed else contextlib.nullcontext(), \
                adapter.training_kernels(base):
            for stage_index in range(run.resume_stage, len(run.stage_indices)):
                if self._train_stage(adapter, run, stage_index, stop_after_steps):
                    return True
                if stage_index + 1 < len(run.stage_indices):  # the next stage starts a fresh schedule
                    run.state = TrainState(stage=stage_index + 1, losses=run.state.losses)
        return False

    def _train_stage(self, adapter, run: Run, stage_index: int, stop_after_steps: int | None) -> bool:
        """One stage: its own optimizer and schedule (the checkpoint loaded into them when it is
        this stage's), then its epochs of batches until the schedule's last step. True when
        ``stop_after_steps`` stopped it early."""
        cfg, accelerator = self.config, run.accelerator
        indices = run.stage_indices[stage_index]
        # without length grouping only the number of samples matters (all that streaming knows)
        stage_lengths = [run.lengths[i] for i in indices] if run.lengths is not None else range(len(indices))

        def epoch_groups(epoch: int) -> list[list[list[int]]]:
            """This process's batches of one epoch (positions in ``indices``), in accumulation groups."""
            batches = shard(epoch_batches(stage_lengths, cfg.batch_size, seed=run.seed + 1000 * stage_index,
                                          epoch=epoch, group_by_length=run.group_by_length),
                            accelerator.process_index, accelerator.num_processes)
            return [batches[i:i + cfg.gradient_accumulation_steps]
                    for i in range(0, len(batches), cfg.gradient_accumulation_steps)]

        total_steps = cfg.max_steps or math.ceil(len(epoch_groups(0)) * cfg.num_epochs)
        optimizer = self._optimizer(adapter, run.model)
        scheduler = self._scheduler(optimizer, total_steps)
        # the schedule is not given to accelerate: its wrapper steps it once per process at every step
        # (it assumes a schedule sized for one process's batches; ours counts this process's steps)
        if run.sharded:  # already sharded: accelerate would wrap it in DDP
            prepared, optimizer = run.wrapped, accelerator.prepare(optimizer)
        else:
            prepared, optimizer = accelerator.prepare(run.wrapped, optimizer)
        run.prepared = prepared
        if run.resume_from is not None:
            shards = (lambda path, model, optim: fsdp.load_shard(path, model, optim, accelerator.process_index,
                                                                  accelerator.num_processes)) if run.sharded else None
            run.state = load_checkpoint(run.resume_from, accelerator.unwrap_model(prepared).model, optimizer,
                                        scheduler, load_weights=shards)
            run.summary["resumed_from"] = str(run.resume_from)
            run.resume_from = None
        state = run.state
        progress = _progress(total_steps, state.step, accelerator.is_main_process, stage_index,
                             len(run.stage_indices))
        prepared.train()
        stopped_early = False
        try:  # the bar is closed before an error's line is printed
            while state.step < total_steps and not stopped_early:
                groups = epoch_groups(state.epoch)
                first = state.batch_in_epoch // cfg.gradient_accumulation_steps
                collated = group_batches(groups, first, lambda ids: run.make_batch([indices[i] for i in ids]),
                                         run.workers)
                for group_index, micro_batches in zip(range(first, len(groups)), collated):
                    group = groups[group_index]
                    at = where(state.step + 1, stage_index, len(run.stage_indices), state.epoch)
                    loss_value, group_tokens, padded = self._optimizer_step(
                        accelerator, prepared, optimizer, scheduler, run.sharded,
                        map(run.dropped.take, micro_batches) if run.dropped else micro_batches, len(group), at)
                    run.tokens += group_tokens
                    run.padded_tokens += padded
                    state.step += 1
                    run.steps_this_run += 1
                    state.batch_in_epoch = (group_index + 1) * cfg.gradient_accumulation_steps
                    self._log_step(run, progress, loss_value, scheduler.get_last_lr()[0])
                    done = state.step >= total_steps
                    stop = stop_after_steps is not None and run.steps_this_run >= stop_after_steps
                    if (cfg.save_every and state.step % cfg.save_every == 0) or stop:
                        self._checkpoint(accelerator, prepared, optimizer, scheduler, state, run.checkpoints,
                                         run.sharded)
                    if done or stop:
                        stopped_early = stop and not done
                        break
                collated.close()  # its workers end with the epoch (or the early stop)
                if state.step < total_steps and not stopped_early:  # the epoch is over: the next one
                    state.epoch += 1
                    state.batch_in_epoch = 0
        finally:
            progress.close()
        return stopped_early

    def save(self, adapter, run: Run, out: Path, backbone: str, completed: bool) -> dict:
        """Finish the summary, then (main process) write the model directory, run info, summary,
        loss log and loss curve. Returns the summary."""
        cfg, accelerator, state = self.config, run.accelerator, run.state
        model = accelerator.unwrap_model(run.prepared).model
        check_weights(model, f"the trained model to {out}", accelerator)  # every process
        seconds = time.time() - run.loop_started
        run.summary.update({
            "steps": state.step, "stages": len(run.stage_indices), "epochs_started": state.epoch + 1,
            "first_loss": state.losses[0][1] if state.losses else None,
            "final_loss": state.losses[-1][1] if state.losses else None,
            "packing": run.packed, "group_by_length": run.group_by_length,
            "padding_fraction": (0.0 if run.packed else round(1 - run.tokens / run.padded_tokens, 4))
            if run.padded_tokens else None,
            "train_seconds": round(seconds, 3), "tokens_per_second": round(run.tokens / max(seconds, 1e-9), 1),
            "processes": accelerator.num_processes, "completed": completed,
        })
        if run.dropped is not None:  # streaming: the records set aside while training
            dropped = {k: run.summary["dropped"].get(k, 0) + run.dropped.counts.get(k, 0)
                       for k in sorted({*run.summary["dropped"], *run.dropped.counts})}
            run.summary.update(dropped=dropped, samples=run.summary["records"] - sum(dropped.values()))
            if run.dropped.quarantine is not None:
                run.summary.update(run.dropped.quarantine.stats())
        accelerator.wait_for_everyone()
        if cfg.trackers:
            accelerator.end_training()
        if run.sharded:  # gathered whole once, into an unsharded copy on the main process
            full = fsdp.full_state_dict(model)
            model = self._unsharded_copy(adapter, full) if accelerator.is_main_process else None
        if accelerator.is_main_process:
            with reported_writes("the trained model", out, then=" (it resumes from the last checkpoint, if any)"):
                self._write_outputs(adapter, model, out, state, run.summary,
                                    backbone)
        accelerator.wait_for_everyone()
        return run.summary

    # -- pieces ----------------------------------------------------------------------------
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
            from peft import get_peft_model

            model = get_peft_model(model, self._lora_config(adapter))
            adapter.model = model
        if cfg.gradient_checkpointing:
            with _quiet_future_warnings():
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if cfg.mode != "full":
                model.enable_input_require_grads()
        model.train()
        return model

    def _lora_config(self, adapter):
        from peft import LoraConfig

        lora = self.config.lora
        return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                          target_modules=lora.target_modules or adapter.lora_target_modules(),
                          modules_to_save=lora.modules_to_save or None)

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

    def _optimizer_step(self, accelerator, prepared, optimizer, scheduler, sharded: bool, micro_batches,
                        n_micro: int, at: str):
        """Forward and backward over the micro-batches of one accumulation group (gradients synced
        on the last only), then one optimizer and schedule step, refused (``NonFiniteError``, naming
        ``at``) when the loss or the gradient norm is not finite. Returns the group's mean loss, its
        real (non-padding) tokens and its tokens with the padding."""
        loss_value, tokens, padded = 0.0, 0, 0
        for micro, batch in enumerate(micro_batches):
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            tokens += real_tokens(batch)
            padded += batch["input_ids"].numel()
            sync = micro == n_micro - 1
            if sharded:
                fsdp.set_gradient_sync(prepared, sync)
            with contextlib.nullcontext() if sync or sharded else accelerator.no_sync(prepared):
                with accelerator.autocast():
                    loss, _ = prepared(**batch)
                accelerator.backward(loss / n_micro)
            loss_value += loss.item() / n_micro
        if accelerator.num_processes > 1:  # the loss of the whole step's batch, the same on every process
            loss_value = float(accelerator.reduce(torch.tensor([loss_value], device=accelerator.device), "mean")[0])
        check_loss(loss_value, accelerator, at)
        if self.config.max_grad_norm:
            norm = accelerator.clip_grad_norm_(prepared.parameters(), self.config.max_grad_norm)
            norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
            if self.config.mixed_precision != "fp16":  # fp16's scaler skips overflowing steps itself
                check_grad_norm(norm, at)
        optimizer.step()
        if not getattr(optimizer, "step_was_skipped", False):  # fp16's scaler skipped an overflowing step
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return loss_value, tokens, padded

    def _log_step(self, run: Run, progress, loss_value: float, lr: float) -> None:
        """Record one optimizer step's loss and learning rate (state, trackers, progress bar)."""
        run.state.losses.append([run.state.step, loss_value, lr])
        if self.config.trackers:
            run.accelerator.log({"loss": loss_value, "lr": lr}, step=run.state.step)
        elapsed = max(time.time() - run.loop_started, 1e-9)
        progress.update(1)
        progress.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", tok_s=f"{run.tokens / elapsed:.0f}")

    def _scheduler(self, optimizer, total_steps: int):
        from transformers import get_scheduler

        name = {"constant": "constant_with_warmup"}.get(self.config.lr_scheduler, self.config.lr_scheduler)
        warmup = int(math.ceil(self.config.warmup_ratio * total_steps))
        return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)

    def _checkpoint(self, accelerator, prepared, optimizer, scheduler, state, folder: Path,
                    sharded: bool = False) -> None:
        """Every process checks the weights (and, sharded, writes its own shards: ``fsdp.save_shard``);
        the main process writes the rest and makes the checkpoint visible by renaming it."""
        accelerator.wait_for_everyone()
        model = accelerator.unwrap_model(prepared).model
        check_weights(model, f"checkpoint step-{state.step}", accelerator)  # every process
        if sharded:
            tmp = partial_checkpoint(folder, state.step)
            if accelerator.is_main_process:
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
            accelerator.wait_for_everyone()
            failed = ""
            try:
                with reported_writes(f"checkpoint {tmp.name}", folder):
                    fsdp.save_shard(tmp, model, optimizer, accelerator.process_index, accelerator.num_processes)
            except Exception as exc:  # noqa: BLE001 - every process must hear of it, or the others wait forever
                failed = str(exc)
            flag = accelerator.reduce(torch.tensor([1.0 if failed else 0.0], device=accelerator.device), "sum")
            if float(flag[0]):
                if accelerator.is_main_process:
                    shutil.rmtree(tmp, ignore_errors=True)
                raise TrainerError(failed or f"another process could not write its part of checkpoint step-{state.step}")
        if accelerator.is_main_process:
            save_checkpoint(folder, model, optimizer, scheduler, state, self.config.keep_checkpoints,
                            shards_written=sharded)
        accelerator.wait_for_everyone()

    def _unsharded_copy(self, adapter, state_dict: dict):
        """A fresh, unsharded model (with the same LoRA adapters) holding ``state_dict``: what the
        main process saves after sharded training."""
        model = adapter.fresh_model()
        if self.config.mode in ("lora", "qlora"):
            from peft import get_peft_model

            model = get_peft_model(model, self._lora_config(adapter))
        model.load_state_dict(state_dict, strict=True)
        return model

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
