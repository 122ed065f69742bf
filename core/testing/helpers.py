"""Helpers that need no pytest: temporary plugin registration."""
from __future__ import annotations

import contextlib
from typing import Iterator

from ..registry import PluginInfo, PluginManager


@contextlib.contextmanager
def registered_plugin(
    pm: PluginManager, plugin: object, name: str | None = None, *, distribution: str = "local", version: str = "0"
) -> Iterator[PluginInfo]:
    """Register ``plugin`` on ``pm`` for the duration of a ``with`` block."""
    info = pm.register(plugin, name, distribution=distribution, version=version)
    try:
        yield info
    finally:
        pm.unregister(info.name)
