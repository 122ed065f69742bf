"""Train with TRL on a composed mix's TRL form, the way its documentation loads a JSON Lines file.

``python trl_probe.py MODEL_DIR COMPOSE_DIR OUT_DIR``, run by a Python that has TRL (and no
adamllm): from ``COMPOSE_DIR`` (TRL opens the relative image paths from the working directory),
``load_dataset("json", data_files="mix_trl.jsonl")``, render a batch with TRL's vision collator
(is a literal ``<image>`` in the training text?), then two ``SFTTrainer`` steps. The same
collator on ``mix.jsonl`` (the ShareGPT form) shows why the TRL form exists. Prints one JSON line.
"""
import json
import os
import sys


def rendered(collator, processor, rows):
    try:
        batch = collator([dict(rows[0]), dict(rows[1])])
    except ValueError as exc:  # e.g. an <image> image token counted twice
        return f"error: {str(exc)[:200]}"
    return processor.tokenizer.decode(batch["input_ids"][0])


def main(model_dir, compose_dir, out_dir):
    os.chdir(compose_dir)
    import trl
    from datasets import load_dataset
    from transformers import AutoProcessor
    from trl import SFTConfig, SFTTrainer
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    processor = AutoProcessor.from_pretrained(model_dir)
    collator = DataCollatorForVisionLanguageModeling(processor)
    trl_rows = load_dataset("json", data_files="mix_trl.jsonl", split="train")
    sharegpt_rows = load_dataset("json", data_files="mix.jsonl", split="train")
    trl_text, sharegpt_text = rendered(collator, processor, trl_rows), rendered(collator, processor, sharegpt_rows)
    args = SFTConfig(output_dir=out_dir, max_steps=2, per_device_train_batch_size=2, report_to="none", use_cpu=True,
                     save_strategy="no", gradient_checkpointing=False, bf16=False, logging_steps=1)
    trainer = SFTTrainer(model=model_dir, args=args, train_dataset=trl_rows, processing_class=processor)
    steps = trainer.train().global_step
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    print(json.dumps({"trl": trl.__version__, "processor": type(processor).__name__, "trl_text": trl_text,
                      "sharegpt_text": sharegpt_text, "steps": steps, "losses": losses}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
