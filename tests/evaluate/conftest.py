import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny random Qwen2-VL checkpoint (built once, offline)."""
    from adamllm.backbones.tiny import build_tiny

    return str(build_tiny("qwen2_vl", tmp_path_factory.mktemp("qwen"), size="tiny", seed=0))
