"""Fake installed distributions, for testing entry-point discovery without pip.

``fake_distribution(root, "adamllm-broken", modules={"broken_plugin": "raise ImportError('x')"},
entry_points={"adamllm-broken": "broken_plugin"})`` writes a ``.dist-info`` folder and the modules
under ``root``; put ``root`` on ``sys.path`` (or ``PYTHONPATH`` for a subprocess) and
``importlib.metadata`` finds it exactly as it finds a pip-installed package.
"""
from __future__ import annotations

import textwrap
from pathlib import Path


def fake_distribution(
    root: str | Path,
    name: str,
    *,
    version: str = "0.1.0",
    modules: dict[str, str] | None = None,
    entry_points: dict[str, str] | None = None,
    group: str = "adamllm",
) -> Path:
    root = Path(root)
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = [f"[{group}]"] + [f"{k} = {v}" for k, v in (entry_points or {name: name.replace("-", "_")}).items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        path = root / (module.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return dist_info
