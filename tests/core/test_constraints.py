"""constraints.txt: the pinned dependency set `make` installs with (`pip install -c constraints.txt`).
It must pin every dependency the project declares, inside pyproject.toml's ranges, and leave the
editable project packages out; the Makefile must install with it and know how to refresh it."""
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version and not line.startswith("-e"), f"not an exact pin: {line!r}"
        found[canonicalize_name(name)] = version
    return found


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in project["dependencies"] + extras]


def test_every_declared_dependency_is_pinned_inside_its_range():
    pinned = pins()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} is not pinned in constraints.txt (run make lock)"
        assert Version(pinned[name]) in requirement.specifier, (requirement, pinned[name])
    assert pinned["torch"] == "2.13.0"  # the Makefile's pin, without the wheel's local "+cpu" label


def test_the_project_packages_and_torchvision_are_not_pinned():
    pinned = pins()
    assert not {"adamllm", "adamllm-example-domain", "adamllm-example-backbone", "torchvision"} & set(pinned)
    assert all(not re.search(r"\+", version) for version in pinned.values())


def test_make_installs_with_the_constraints_and_can_refresh_them():
    makefile = (ROOT / "Makefile").read_text()
    install = next(line for line in makefile.splitlines() if "pip install" in line and "-e '.[test]'" in line)
    assert "-c $(CONSTRAINTS)" in install and "CONSTRAINTS := constraints.txt" in makefile
    assert re.search(r"^\$\(VENV\)/\.installed:.*\$\(CONSTRAINTS\)", makefile, re.M)  # a new pin reinstalls
    assert re.search(r"^lock:", makefile, re.M) and "pip freeze --exclude-editable" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
