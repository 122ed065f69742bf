"""The synthesizer's conversation protocol: the strings a synthesizer is tuned on and prompted with.

The released checkpoint ``AdaptLLM/visual-instruction-synthesizer`` was trained on exactly the
strings of ``RELEASED`` (docs/method.md §3), so prompting it, parsing its output and tuning our
own synthesizers all go through one named, replaceable profile rather than literals in code: with
``RELEASED``, our tuned synthesizers and the released one are interchangeable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AnswerKind = Literal["precise", "informative"]


@dataclass(frozen=True)
class ProtocolProfile:
    """Turn 1 asks for a description (answered by the caption); every later user turn is a hint
    line saying which kind of answer is wanted, a newline, then the instruction."""

    name: str = "released"
    describe: str = "Describe the image."
    precise_hint: str = "Answer with a precise response."
    informative_hint: str = "Answer with an informative response."

    def hint(self, kind: AnswerKind) -> str:
        return self.precise_hint if kind == "precise" else self.informative_hint

    def ask(self, kind: AnswerKind, instruction: str) -> str:
        """The user turn that asks ``instruction`` for an answer of ``kind``."""
        return f"{self.hint(kind)}\n{instruction.strip()}"

    def split(self, user_turn: str) -> tuple[AnswerKind, str] | None:
        """``(kind, instruction)`` of a user turn written in this protocol; None if it has no hint."""
        text = user_turn.strip()
        for kind in ("precise", "informative"):
            hint = self.hint(kind)
            if text.startswith(hint):
                instruction = text[len(hint):].strip()
                return (kind, instruction) if instruction else None
        return None


RELEASED = ProtocolProfile()
PROFILES = {RELEASED.name: RELEASED}
