"""The same contract suite the built-in backbones pass."""
from adamllm_example_backbone.tiny import build_tiny

from adamllm.testing.backbone_contract import BackboneContract


class TestLlava(BackboneContract):
    backbone = "llava"

    def build_checkpoint(self, path):
        return build_tiny(path, size="tiny", seed=0)
