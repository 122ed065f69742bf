import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """One tiny checkpoint per built-in family, built once per test session."""
    from adamllm.backbones.tiny import build_tiny

    root = tmp_path_factory.mktemp("tiny_ckpts")
    cache = {}

    def get(family):
        if family not in cache:
            cache[family] = build_tiny(family, root / family, size="tiny", seed=0)
        return cache[family]

    return get
