"""Entry-point module of the built-in filters: strings only, nothing heavy is imported."""
from adamllm import hookimpl
from adamllm.specs import FilterSpec


@hookimpl
def adamllm_filters():
    return [
        FilterSpec(
            name="consistency",
            factory="adamllm.plugins.filtering.consistency:ConsistencyFilter",
            config="adamllm.plugins.filtering.consistency:ConsistencyConfig",
            description="A text-only LLM (causal_lm model slot) judges whether the precise answer follows "
                        "from the informative one, few-shot, 2 greedy tokens (the paper's filter)",
        ),
        FilterSpec(
            name="lexical",
            factory="adamllm.plugins.filtering.simple:LexicalFilter",
            config="adamllm.plugins.filtering.simple:LexicalConfig",
            description="No model: yes when every content word of the precise answer is in the "
                        "informative answer (ablation)",
        ),
        FilterSpec(
            name="none",
            factory="adamllm.plugins.filtering.simple:KeepAllFilter",
            config="adamllm.plugins.filtering.simple:KeepAllConfig",
            description="Keeps every triplet (ablation: no filter)",
        ),
    ]
