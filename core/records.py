"""Records the stages exchange through files in the output directory (one JSON object a line).

Every stage reads the previous stage's file and writes its own, so each stage can run alone and a
later stage can start from an earlier stage's output (or from a file named in the config's ``data``).
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class ImageCaptionPair(Record):
    """A domain image with its caption (input of ``synthesize``)."""

    id: str
    image: str = Field(description="Image path, relative to the source's root.")
    caption: str
    instruction: Optional[str] = Field(None, description="The caption instruction, kept for the caption turn.")
    where: Optional[str] = Field(None, exclude=True, description="The file and line it was read from (not written out).")


class TaskTriplet(Record):
    """An instruction with a precise and an informative answer (output of ``synthesize``)."""

    id: str
    image: str
    instruction: str = Field(min_length=1)
    precise: str = Field(min_length=1)
    informative: str = Field(min_length=1)


class Failure(Record):
    """A record a component could not process (a prompt that does not encode, a sample too long):
    returned in its place so that the stage quarantines it with ``kind`` and ``reason`` and counts
    it, instead of dropping it unseen. A stage whose every record failed fails."""

    id: str
    kind: str = Field("failed", description="What stats count it as, e.g. bad_sample.")
    reason: str = Field(description="One line: why it failed.")


class Verdict(Record):
    """The consistency filter's label for one triplet (output of ``filter``).

    ``other``: the judge's words are none of the three labels under the filter's parsing (the
    paper's exact test drops "Yes." this way); like ``no`` and ``open`` it is not kept.
    """

    id: str
    verdict: Literal["yes", "no", "open", "other"]
    raw: str = ""


class Message(Record):
    role: Literal["system", "user", "assistant"]
    content: str


class TrainingExample(Record):
    """One ShareGPT-style conversation (output of ``compose``, input of ``train``)."""

    messages: list[Message] = Field(min_length=1)
    images: list[str] = Field(default_factory=list)
    id: Optional[str] = None
    stage: Optional[Literal[1, 2]] = Field(None, description="two_stage training: 1 captions, 2 tasks.")


class Prediction(Record):
    """One benchmark sample with the model's answer and its score (output of ``evaluate``)."""

    id: str
    benchmark: str
    prompt: str
    prediction: str
    label: Any
    score: Optional[float] = None
    metric: Optional[str] = None


class Score(Record):
    """One reported number: a benchmark's metric ×100, with the scorer that produced it."""

    benchmark: str
    metric: str
    value: float
    scorer: str
    n: int
