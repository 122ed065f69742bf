"""Small, model-free stage components for tests: register ``TestingComponents()`` on a manager.

- synthesizer ``testing_echo``: one triplet per pair, the caption as the informative answer and its
  first word as the precise one (``no_triplet_if`` a word in the caption: none for that pair);
- filter ``testing_overlap``: ``yes`` when the precise answer appears in the informative one;
- composer ``testing_caption_task``: the caption turn, plus the task turn when the verdict is yes.

They let a test run synthesize -> filter -> compose -> train end to end on fixture pairs, in
seconds, to check what the stages do around a component (resume, quarantine, fingerprints).
``seconds_per_batch`` slows them down, so that a test can kill a stage in the middle of its work.
``PLUGIN`` is an instance to name in an entry point (``adamllm.testing.components:PLUGIN``).
"""
from __future__ import annotations

import time
from typing import Optional

from pydantic import BaseModel, ConfigDict

from .. import hookimpl
from ..records import TaskTriplet, TrainingExample, Verdict
from ..specs import ComposerSpec, FilterSpec, SynthesizerSpec


class EchoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    no_triplet_if: Optional[str] = None
    batch_size: int = 4
    seconds_per_batch: float = 0.0


class FilterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch_size: int = 4
    seconds_per_batch: float = 0.0


class EchoSynthesizer:
    def __init__(self, config: EchoOptions) -> None:
        self.config = config
        self.batch_size = config.batch_size

    def synthesize(self, pairs, ctx):
        time.sleep(self.config.seconds_per_batch)
        out = []
        for pair in pairs:
            if self.config.no_triplet_if and self.config.no_triplet_if in pair.caption:
                out.append(None)
                continue
            out.append(TaskTriplet(id=pair.id, image=pair.image, instruction="Describe the main object in one word.",
                                   precise=pair.caption.split()[0], informative=pair.caption))
        return out


class OverlapFilter:
    def __init__(self, config: FilterOptions) -> None:
        self.config = config
        self.batch_size = config.batch_size

    def judge(self, triplets, ctx):
        time.sleep(self.config.seconds_per_batch)
        return [Verdict(id=t.id, verdict="yes" if t.precise.lower() in t.informative.lower() else "no")
                for t in triplets]


class ComposeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds_per_example: float = 0.0


class CaptionTaskComposer:
    def __init__(self, config: ComposeOptions) -> None:
        self.config = config

    def compose(self, pairs, triplets, verdicts, ctx):
        for pair in pairs:
            time.sleep(self.config.seconds_per_example)
            if pair.id not in triplets:
                continue
            messages = [{"role": "user", "content": "<image>" + (pair.instruction or "Describe the image.")},
                        {"role": "assistant", "content": pair.caption}]
            verdict = verdicts.get(pair.id)
            if verdict is not None and verdict.verdict == "yes":
                messages += [{"role": "user", "content": triplets[pair.id].instruction},
                             {"role": "assistant", "content": triplets[pair.id].precise}]
            yield TrainingExample(id=pair.id, messages=messages, images=[pair.image])


class TestingComponents:
    """The plugin object: ``pm.register(TestingComponents(), "testing")``."""

    @hookimpl
    def adamllm_synthesizers(self):
        return [SynthesizerSpec(name="testing_echo", factory=EchoSynthesizer, config=EchoOptions,
                                description="test: echoes the caption")]

    @hookimpl
    def adamllm_filters(self):
        return [FilterSpec(name="testing_overlap", factory=OverlapFilter, config=FilterOptions,
                           description="test: word overlap")]

    @hookimpl
    def adamllm_composers(self):
        return [ComposerSpec(name="testing_caption_task", factory=CaptionTaskComposer, config=ComposeOptions,
                             description="test: caption turn + task turn")]


PLUGIN = TestingComponents()
