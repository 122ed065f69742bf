"""The ``adamllm`` composer passes the core's composer contract, built through a run config."""
from adamllm.testing.stage_contract import ComposerContract


class TestDefaultComposer(ComposerContract):
    component = "adamllm"
    options = {}


class TestTwoStageComposer(ComposerContract):
    component = "adamllm"
    options = {"two_stage": True}


class TestTaskOnlyComposer(ComposerContract):
    component = "adamllm"
    options = {"caption_turn": False, "indicators": "words"}
