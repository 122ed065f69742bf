"""Built-in domains of adamllm."""
