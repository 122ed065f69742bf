"""An example adamllm backbone plugin: LLaVA-1.5 (``LlavaForConditionalGeneration``)."""
