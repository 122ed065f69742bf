"""The toy ``toyshapes`` domain: a procedural world where the method's effect can show on a CPU.

``demo_world(out_dir, seed, fast)`` writes (or reuses) the world: general seed data in the three
public seed layouts, domain image-caption pairs and a held-out benchmark (docs/shapes.md);
``build_general_model(world, out_dir)`` trains the demo's starting model on the general tasks.
Imports are lazy: importing this package costs nothing.
"""
from __future__ import annotations

__all__ = ["GeneralModelSettings", "World", "build_general_model", "demo_world", "generate_world",
           "text_only_baseline", "truth_triplets"]

_HOMES = {"World": "world", "demo_world": "world", "generate_world": "world",
          "GeneralModelSettings": "general_model", "build_general_model": "general_model",
          "text_only_baseline": "baseline", "truth_triplets": "truth"}


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
