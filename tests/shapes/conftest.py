import pytest


@pytest.fixture(scope="session")
def fast_world(tmp_path_factory):
    """The --fast toy world (160 general images, 160 domain pairs, 100 benchmark questions), once."""
    from adamllm.domains.toyshapes import demo_world

    return demo_world(tmp_path_factory.mktemp("toyshapes") / "world", seed=0, fast=True)
