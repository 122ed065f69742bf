"""Built-in backbone adapters: Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LLaVA-NeXT and Llama-3.2-Vision (Mllama)."""
from adamllm import hookimpl
from adamllm.specs import BackboneSpec

CONFIG = "adamllm.backbone:BackboneConfig"


def _tiny_builder(family: str):
    def build(out_dir, size: str = "tiny", seed: int = 0, words=()):
        from .tiny import build_tiny  # imports torch: only when a checkpoint is built

        return build_tiny(family, out_dir, size=size, seed=seed, words=words)

    build.__qualname__ = f"build_tiny_{family}"
    return build


#: (name, adapter class, description) of each built-in backbone; every one has a tiny builder.
BACKBONES = (
    ("qwen2_vl", "adamllm.backbones.families:Qwen2VLAdapter", "Qwen2-VL (e.g. Qwen/Qwen2-VL-2B-Instruct)"),
    ("qwen2_5_vl", "adamllm.backbones.families:Qwen2_5_VLAdapter", "Qwen2.5-VL (e.g. Qwen/Qwen2.5-VL-3B-Instruct)"),
    ("qwen3_vl", "adamllm.backbones.families:Qwen3VLAdapter", "Qwen3-VL, dense models (e.g. Qwen/Qwen3-VL-2B-Instruct)"),
    ("llava_next", "adamllm.backbones.families:LlavaNextAdapter",
     "LLaVA-NeXT / LLaVA-v1.6 with a Llama-3 LM (transformers format)"),
    ("mllama", "adamllm.backbones.families:MllamaAdapter", "Llama-3.2-Vision (Mllama)"),
    ("causal_lm", "adamllm.backbones.causal_lm:CausalLMAdapter",
     "Text-only causal LM (any transformers AutoModelForCausalLM), e.g. a filter's judge"),
)


@hookimpl
def adamllm_backbones():
    return [BackboneSpec(name=name, factory=factory, config=CONFIG, tiny=_tiny_builder(name), description=description)
            for name, factory, description in BACKBONES]
