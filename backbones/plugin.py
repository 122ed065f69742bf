"""Built-in backbone adapters: Qwen2-VL, LLaVA-NeXT and Llama-3.2-Vision (Mllama)."""
from adamllm import hookimpl


@hookimpl
def adamllm_backbones():
    return []
