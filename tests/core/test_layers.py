"""Core stays below every plugin: the import-linter contracts in pyproject.toml hold."""
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_core_contract_lists_every_core_module():
    """A new core module is covered by the contract only if it is listed: keep the list complete."""
    core = {f"adamllm.{p.stem}" for p in (ROOT / "core").iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    (forbidden,) = [c for c in _contracts() if c["type"] == "forbidden"]
    assert set(forbidden["source_modules"]) == core
    assert set(forbidden["forbidden_modules"]) == {"adamllm.plugins", "adamllm.backbones", "adamllm.domains"}


#: setup.py's folder -> package mapping, as a wheel lays it out.
PACKAGE_DIRS = {"core": "adamllm", "plugins": "adamllm/plugins", "backbones": "adamllm/backbones",
                "domains": "adamllm/domains"}


def test_import_linter_contracts_are_kept(tmp_path):
    """import-linter reads a package from one folder; the editable install maps four folders onto
    ``adamllm``, so the check runs on the sources laid out as the wheel installs them."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.fail("import-linter is not installed (it is in the test extra: pip install -e '.[test]')")
    assert all(f'"{pkg.replace("/", ".")}": "{folder}"' in (ROOT / "setup.py").read_text()
               for folder, pkg in PACKAGE_DIRS.items())
    for folder, package in PACKAGE_DIRS.items():
        shutil.copytree(ROOT / folder, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    result = subprocess.run([lint, "--no-cache", str(ROOT / "pyproject.toml")], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout
