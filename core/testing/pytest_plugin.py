"""pytest fixtures for adamllm plugin authors (loaded automatically through ``pytest11``).

Kept import-light: nothing heavy is imported until a fixture is used.
"""
from __future__ import annotations

import pytest


@pytest.fixture
def plugin_manager():
    """A fresh plugin manager that has loaded no entry points (no installed plugin leaks in)."""
    from ..registry import PluginManager

    return PluginManager(load_entrypoints=False, strict=True)


@pytest.fixture
def builtin_plugin_manager():
    """A fresh manager with only adamllm's own built-in plugins loaded (third-party ones blocked)."""
    from ..registry import PluginManager

    return PluginManager(no_plugins=True, strict=True)


@pytest.fixture
def register_plugin(plugin_manager):
    """``register_plugin(obj, name=None, distribution="local")``: registered until the test ends."""
    from .helpers import registered_plugin
    import contextlib

    stack = contextlib.ExitStack()

    def _register(plugin, name=None, **kwargs):
        return stack.enter_context(registered_plugin(plugin_manager, plugin, name, **kwargs))

    with stack:
        yield _register
