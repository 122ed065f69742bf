"""Contract suites for synthesizer, filter and composer components: subclass one to check yours.

::

    from adamllm.testing.stage_contract import FilterContract

    class TestMyFilter(FilterContract):
        component = "my_filter"          # the registered name
        options = {"threshold": 0.5}     # its config section, without `type`

Each suite builds the component from the installed plugins through a real run config (so model
slots and paths are validated as in a run), feeds it fixture records and checks what
``adamllm.contracts`` asks of its kind: one result per record, in order, with the record's id.
"""
from __future__ import annotations

from typing import Any, ClassVar

import pytest


class _StageComponentContract:
    kind: ClassVar[str] = ""
    section: ClassVar[str] = ""
    component: str = ""
    options: dict = {}

    @pytest.fixture
    def plugin_manager_for_contract(self):
        """The installed plugins (override to register the component another way)."""
        from adamllm.registry import PluginManager

        return PluginManager(strict=True)

    @pytest.fixture
    def stage_context(self, tmp_path, plugin_manager_for_contract):
        from adamllm.config import validate_config
        from adamllm.runner import StageContext
        from adamllm.stages import STAGE_TABLE

        from .data import write_pairs

        pm = plugin_manager_for_contract
        pairs = write_pairs(tmp_path / "pairs", n=4)
        cfg = validate_config({"output_dir": str(tmp_path / "out"), "data": {"synthesize": str(pairs)},
                               self.section: {"type": self.component, **self.options}}, pm, base_dir=tmp_path)
        stage = next(s.name for s in STAGE_TABLE if s.kind == self.kind)
        return StageContext(stage, cfg, pm, echo=lambda _: None)

    @pytest.fixture
    def built(self, stage_context):
        return stage_context.component()

    def test_satisfies_the_core_protocol(self, built):
        from adamllm.contracts import PROTOCOLS, members
        from adamllm.specs import resolve

        protocol = resolve(PROTOCOLS[self.kind])
        missing = [m for m in sorted(members(protocol)) if not hasattr(built, m)]
        assert not missing, f"{type(built).__name__} lacks {missing} of {protocol.__name__}"

    @staticmethod
    def pairs(ctx) -> list:
        return list(ctx.pairs())

    @staticmethod
    def triplets(pairs) -> list:
        from adamllm.records import TaskTriplet

        return [TaskTriplet(id=p.id, image=p.image, instruction=f"What is shown? ({i})", precise="A shape.",
                            informative=f"The picture shows a shape; {p.caption}") for i, p in enumerate(pairs)]


class SynthesizerContract(_StageComponentContract):
    kind = "synthesizer"
    section = "synthesizer"

    def test_one_result_per_pair_in_order(self, built, stage_context):
        from adamllm.records import Failure, TaskTriplet

        pairs = self.pairs(stage_context)
        results = list(built.synthesize(pairs, stage_context))
        assert len(results) == len(pairs)
        for pair, result in zip(pairs, results):
            if isinstance(result, Failure):
                assert result.id == pair.id and result.reason.strip()
            elif result is not None:
                triplet = result if isinstance(result, TaskTriplet) else TaskTriplet.model_validate(result)
                assert triplet.id == pair.id and triplet.instruction.strip()


class FilterContract(_StageComponentContract):
    kind = "filter"
    section = "filter"

    def test_one_verdict_per_triplet_in_order(self, built, stage_context):
        from adamllm.records import Verdict

        triplets = self.triplets(self.pairs(stage_context))
        verdicts = [v if isinstance(v, Verdict) else Verdict.model_validate(v)
                    for v in built.judge(triplets, stage_context)]
        assert [v.id for v in verdicts] == [t.id for t in triplets]


class ComposerContract(_StageComponentContract):
    kind = "composer"
    section = "composer"

    def test_examples_are_sharegpt_with_their_images(self, built, stage_context):
        from adamllm.backbone import IMAGE_PLACEHOLDER
        from adamllm.records import TrainingExample, Verdict

        pairs = self.pairs(stage_context)
        triplets = {t.id: t for t in self.triplets(pairs)}
        verdicts = {t: Verdict(id=t, verdict="yes") for t in triplets}
        examples: list[Any] = [e if isinstance(e, TrainingExample) else TrainingExample.model_validate(e)
                               for e in built.compose(iter(pairs), triplets, verdicts, stage_context)]
        assert examples
        for example in examples:
            placeholders = sum(m.content.count(IMAGE_PLACEHOLDER) for m in example.messages)
            assert placeholders == len(example.images)
            assert example.messages[-1].role == "assistant"
