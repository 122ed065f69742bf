"""Built-in plugins of adamllm."""
