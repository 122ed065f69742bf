"""The backbone contract suite, run on tiny random builds of the five built-in image-text families."""
from adamllm.backbones.tiny import build_tiny
from adamllm.testing.backbone_contract import BackboneContract


class TestQwen2VL(BackboneContract):
    backbone = "qwen2_vl"

    def build_checkpoint(self, path):
        return build_tiny("qwen2_vl", path, size="tiny", seed=0)


class TestLlavaNext(BackboneContract):
    backbone = "llava_next"

    def build_checkpoint(self, path):
        return build_tiny("llava_next", path, size="tiny", seed=0)


class TestMllama(BackboneContract):
    backbone = "mllama"

    def build_checkpoint(self, path):
        return build_tiny("mllama", path, size="tiny", seed=0)


class TestQwen2_5_VL(BackboneContract):
    backbone = "qwen2_5_vl"

    def build_checkpoint(self, path):
        return build_tiny("qwen2_5_vl", path, size="tiny", seed=0)


class TestQwen3VL(BackboneContract):
    backbone = "qwen3_vl"

    def build_checkpoint(self, path):
        return build_tiny("qwen3_vl", path, size="tiny", seed=0)
