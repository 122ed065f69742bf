"""One import namespace: the editable install and a built wheel both expose only ``adamllm``."""
import subprocess
import sys
import zipfile
from pathlib import Path

import adamllm

ROOT = Path(__file__).resolve().parents[2]


def test_editable_install_maps_folders_onto_adamllm():
    import adamllm.backbones
    import adamllm.domains
    import adamllm.plugins

    assert Path(adamllm.__file__).parent == ROOT / "core"
    assert Path(adamllm.plugins.__file__).parent == ROOT / "plugins"
    assert Path(adamllm.backbones.__file__).parent == ROOT / "backbones"
    assert Path(adamllm.domains.__file__).parent == ROOT / "domains"
    probe = "import importlib.util as u; print([n for n in ('core', 'plugins', 'backbones', 'domains') if u.find_spec(n)])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd="/", check=True)
    assert out.stdout.strip() == "[]"


def test_wheel_contains_only_the_adamllm_namespace(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("adamllm-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"adamllm", f"adamllm-{adamllm.__version__}.dist-info"}
    for expected in ("adamllm/hookspecs.py", "adamllm/plugins/__init__.py", "adamllm/backbones/plugin.py",
                     "adamllm/domains/__init__.py", "adamllm/testing/pytest_plugin.py"):
        assert expected in names
    entry_points = zipfile.ZipFile(wheel).read(f"adamllm-{adamllm.__version__}.dist-info/entry_points.txt").decode()
    assert "[adamllm]" in entry_points and "adamllm.backbones.plugin" in entry_points
    assert any(n.endswith("dist-info/licenses/LICENSE") for n in names)

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    probe = "import adamllm, adamllm.plugins, adamllm.backbones.plugin, adamllm.domains; print(adamllm.__file__)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.strip().startswith(str(target))
