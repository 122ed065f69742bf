"""Built-in backbone adapters: Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LLaVA-NeXT and Llama-3.2-Vision (Mllama)."""
from adamllm import hookimpl
from adamllm.specs import BackboneSpec

CONFIG = "adamllm.backbone:BackboneConfig"


def _tiny_builder(family: str):
    def build(out_dir, size: str = "tiny", seed: int = 0):
        from .tiny import build_tiny  # imports torch: only when a checkpoint is built

        return build_tiny(family, out_dir, size=size, seed=seed)

    build.__qualname__ = f"build_tiny_{family}"
    return build


@hookimpl
def adamllm_backbones():
    return [
        BackboneSpec(name="qwen2_vl", factory="adamllm.backbones.families:Qwen2VLAdapter", config=CONFIG,
                     tiny=_tiny_builder("qwen2_vl"),
                     description="Qwen2-VL (e.g. Qwen/Qwen2-VL-2B-Instruct)"),
        BackboneSpec(name="qwen2_5_vl", factory="adamllm.backbones.families:Qwen2_5_VLAdapter", config=CONFIG,
                     tiny=_tiny_builder("qwen2_5_vl"),
                     description="Qwen2.5-VL (e.g. Qwen/Qwen2.5-VL-3B-Instruct)"),
        BackboneSpec(name="qwen3_vl", factory="adamllm.backbones.families:Qwen3VLAdapter", config=CONFIG,
                     tiny=_tiny_builder("qwen3_vl"),
                     description="Qwen3-VL, dense models (e.g. Qwen/Qwen3-VL-2B-Instruct)"),
        BackboneSpec(name="llava_next", factory="adamllm.backbones.families:LlavaNextAdapter", config=CONFIG,
                     tiny=_tiny_builder("llava_next"),
                     description="LLaVA-NeXT / LLaVA-v1.6 with a Llama-3 LM (transformers format)"),
        BackboneSpec(name="mllama", factory="adamllm.backbones.families:MllamaAdapter", config=CONFIG,
                     tiny=_tiny_builder("mllama"),
                     description="Llama-3.2-Vision (Mllama)"),
        BackboneSpec(name="causal_lm", factory="adamllm.backbones.causal_lm:CausalLMAdapter", config=CONFIG,
                     tiny=_tiny_builder("causal_lm"),
                     description="Text-only causal LM (any transformers AutoModelForCausalLM), e.g. a filter's judge"),
    ]
