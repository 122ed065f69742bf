"""Entry-point module of the built-in composer: strings only, nothing heavy is imported."""
from adamllm import hookimpl
from adamllm.specs import ComposerSpec


@hookimpl
def adamllm_composers():
    return [
        ComposerSpec(
            name="adamllm",
            factory="adamllm.plugins.compose.composer:AdamllmComposer",
            config="adamllm.plugins.compose.composer:ComposerConfig",
            description="The paper's mix: caption turn + task turn per image (indicator rule, seeded "
                        "templates); two-stage and ablation switches",
        ),
    ]
