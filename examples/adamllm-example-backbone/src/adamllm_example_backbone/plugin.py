"""Entry-point module: only strings here, so listing plugins imports no torch."""
from adamllm import hookimpl
from adamllm.specs import BackboneSpec


@hookimpl
def adamllm_backbones():
    return [
        BackboneSpec(
            name="llava",
            description="LLaVA-1.5 style models (CLIP tower + MLP projector + Llama), transformers format",
            factory="adamllm_example_backbone.adapter:LlavaAdapter",
            config="adamllm.backbone:BackboneConfig",  # the shared options: model, dtype, device, ...
            tiny="adamllm_example_backbone.tiny:build_tiny",
        )
    ]
