"""Built-in backbones of adamllm."""
