"""Entry-point module of the built-in trainer: strings only, no torch import."""
from adamllm import hookimpl
from adamllm.specs import TrainerSpec


@hookimpl
def adamllm_trainers():
    return [
        TrainerSpec(
            name="sft",
            factory="adamllm.plugins.sft.trainer:SFTTrainer",
            config="adamllm.plugins.sft.config:SFTConfig",
            description="Supervised post-training (full, LoRA, QLoRA) with accelerate; single- or two-stage",
        )
    ]
