"""The built-in ``adamllm demo`` command (``recipe.py``)."""
