"""Entry-point module of the built-in synthesizers: strings only, nothing heavy is imported."""
from adamllm import hookimpl
from adamllm.specs import SynthesizerSpec


@hookimpl
def adamllm_synthesizers():
    return [
        SynthesizerSpec(
            name="adamllm",
            factory="adamllm.plugins.synthesis.synthesizer:MLLMSynthesizer",
            config="adamllm.plugins.synthesis.synthesizer:MLLMSynthesizerConfig",
            description="A tuned visual instruction synthesizer (an MLLM in a model slot; the released "
                        "AdaptLLM/visual-instruction-synthesizer works through llava_next)",
        ),
        SynthesizerSpec(
            name="rules",
            factory="adamllm.plugins.synthesis.rules:RulesSynthesizer",
            config="adamllm.plugins.synthesis.rules:RulesConfig",
            description="No model: question-answer pairs templated from the caption text (manual-rule baseline)",
        ),
    ]
