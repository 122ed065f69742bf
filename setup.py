"""Maps the repository folders onto one import namespace, `adamllm`.

core/ is `adamllm`, plugins/ is `adamllm.plugins`, backbones/ is `adamllm.backbones` and
domains/ is `adamllm.domains`; nothing else lands in site-packages. Everything else lives in
pyproject.toml.
"""
from setuptools import find_packages, setup

PACKAGE_DIRS = {
    "adamllm": "core",
    "adamllm.plugins": "plugins",
    "adamllm.backbones": "backbones",
    "adamllm.domains": "domains",
}


def _packages() -> list[str]:
    found = []
    for package, folder in PACKAGE_DIRS.items():
        found.append(package)
        found += [f"{package}.{sub}" for sub in find_packages(folder)]
    return found


setup(packages=_packages(), package_dir=PACKAGE_DIRS)
