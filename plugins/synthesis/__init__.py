"""Built-in visual instruction synthesizers: ``adamllm`` (an MLLM synthesizer) and ``rules`` (no model)."""
