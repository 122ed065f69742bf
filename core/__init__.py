"""adamllm: domain-specific post-training of multimodal LLMs, as a plugin framework.

Importing this package stays cheap (no torch, no transformers): the CLI lists plugins instantly.
"""
import pluggy

__version__ = "0.1.0"

#: Decorator for plugin hook implementations: ``@adamllm.hookimpl``.
hookimpl = pluggy.HookimplMarker("adamllm")

__all__ = ["__version__", "hookimpl"]
