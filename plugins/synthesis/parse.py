"""Parsing a synthesizer's continuation into turns, and the turns into one task triplet.

The synthesizer is prompted with the first exchange (image + describe request, caption) and an
opened, empty user turn (docs/method.md §4); it goes on writing user and assistant turns in its
chat template's own format. Parsing therefore depends on the chat template, not on the model
family: a ``TurnFormat`` names a template's role markers, ``detect`` finds it from a template or
a rendered prompt, ``split_turns`` cuts the continuation at the markers and ``pair_triplet``
reads the turns in order and keeps the earliest instruction answered both ways (with the latest
answer of each kind given to it up to then).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from .protocol import ProtocolProfile

#: Why a continuation gave no triplet (counted in the synthesizer's stats).
NO_PAIR = "no_pair"                # well-formed turns, but no instruction answered both ways
TRUNCATED_ONLY = "truncated_only"  # nothing but a turn that ran out of tokens
UNBALANCED = "unbalanced"          # an answer without a question, or a question left unanswered
PARSE_ERROR = "parse_error"        # nothing in the protocol's form (junk, no hint lines)
REASONS = (NO_PAIR, TRUNCATED_ONLY, UNBALANCED, PARSE_ERROR)

#: Role given to text found outside a well-formed turn.
JUNK = "junk"
ROLES = ("user", "assistant")


@dataclass(frozen=True)
class TurnFormat:
    """A chat template's turn markers: a turn is ``open + role + close``, its text, then ``end``
    (and, between turns, ``separator``). ``end_of_text`` tokens end the whole conversation."""

    name: str
    open: str
    close: str
    end: str
    separator: str = ""
    end_of_text: tuple[str, ...] = ()

    def header(self, role: str) -> str:
        return f"{self.open}{role}{self.close}"

    @property
    def _pattern(self) -> re.Pattern:
        # a header (group "role") or an end-of-turn marker; the header's closing whitespace may be
        # shortened by the model, so only its first non-space part is required
        close_core = self.close.rstrip()
        close_tail = self.close[len(close_core):]
        header = (re.escape(self.open) + r"(?P<role>[^\s<>|]{1,32})" + re.escape(close_core)
                  + (f"(?:{re.escape(close_tail)})?" if close_tail else ""))
        return re.compile(f"{header}|(?P<end>{re.escape(self.end)})")


LLAMA3 = TurnFormat("llama3", "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>",
                    end_of_text=("<|end_of_text|>",))
CHATML = TurnFormat("chatml", "<|im_start|>", "\n", "<|im_end|>", separator="\n",
                    end_of_text=("<|endoftext|>",))
FORMATS = (LLAMA3, CHATML)


def detect(text: str) -> TurnFormat:
    """The turn format of a chat template's source or of a prompt rendered with it."""
    for fmt in FORMATS:
        if fmt.open in text and fmt.end in text:
            return fmt
    for fmt in FORMATS:  # a prompt that only opened a turn
        if fmt.open in text:
            return fmt
    raise ValueError("unknown chat format: neither Llama-3 headers nor ChatML markers found "
                     f"(known: {', '.join(f.name for f in FORMATS)})")


def _cut_at_end_of_text(text: str, tokens: Iterable[str]) -> tuple[str, bool]:
    cut = len(text)
    for token in tokens:
        if token:
            index = text.find(token)
            if index != -1:
                cut = min(cut, index)
    return text[:cut], cut < len(text)


def split_turns(continuation: str, fmt: TurnFormat,
                end_of_text: Sequence[str] = ()) -> tuple[list[tuple[str, str]], bool]:
    """``(turns, truncated)`` of a continuation that starts inside an opened user turn.

    ``turns`` are ``(role, text)`` in order, texts stripped, empty turns dropped. The first
    end-of-text token (``fmt.end_of_text`` plus ``end_of_text``, e.g. the tokenizer's eos, unless
    it is the end-of-turn marker itself) ends the text; whatever follows is ignored. A last turn
    without its end marker is dropped: ``truncated`` is True when it ran out of tokens (no
    end-of-text token came). Text outside a well-formed turn (between turns, or a turn the
    end-of-text token cut open) is kept as a ``"junk"`` turn so the caller can tell junk from an
    empty reply.
    """
    stops = [t for t in (*fmt.end_of_text, *end_of_text) if t and t != fmt.end]
    text, ended = _cut_at_end_of_text(continuation, stops)
    turns: list[tuple[str, str]] = []
    role: Optional[str] = "user"  # None: between turns
    start = 0
    header_seen = False
    for match in fmt._pattern.finditer(text):
        body = text[start:match.start()].strip()
        if match.group("end") is not None:
            if role is None:
                if body:
                    turns.append((JUNK, body))
            elif body:
                turns.append((role, body))
            role = None
        else:
            if role is None:
                if body:
                    turns.append((JUNK, body))
            elif body:  # a header inside an open turn: the model skipped the end marker
                turns.append((role, body))
            role = match.group("role")
            header_seen = True
        start = match.end()
    rest = text[start:].strip()
    truncated = False
    if role is not None and (rest or (header_seen and start == len(text))):
        if ended:
            if rest:
                turns.append((JUNK, rest))  # a turn closed by end-of-text instead of its marker
        else:
            truncated = True
    elif role is None and rest:
        turns.append((JUNK, rest))
    return turns, truncated


Triplet = tuple[str, str, str]


def pair_triplet(turns: Sequence[tuple[str, str]], profile: ProtocolProfile,
                 truncated: bool = False) -> tuple[Optional[Triplet], Optional[str]]:
    """``((instruction, precise, informative), None)`` for the earliest instruction answered both
    ways, or ``(None, reason)`` with a reason of ``REASONS``.

    Turns are read in pairs (user, then assistant), in order. A user turn is ``profile.split``
    into the kind of answer it asks for and its instruction; two instructions are the same when
    their texts (hint removed, stripped) are equal. Each answer is recorded under its instruction
    and kind, a later answer of the same kind to the same instruction replacing the earlier one.
    The first turn that gives an instruction its second kind of answer ends the reading: that
    instruction is the triplet's, with its latest precise and informative answers, and later turns
    are not read (so "P: A, P: B, I: B, I: A" pairs B, and "P: A -> x, P: A -> y, I: A -> z" gives
    ``(A, y, z)``). This is the reference code's pairing (its synthesizer-output reader keeps one
    dict per kind, overwrites an instruction's entry, and stops at the first instruction found in
    both). An assistant turn without a user turn before it, a user turn left unanswered, or text
    outside the turns is skipped (and named in the reason when no triplet comes).
    """
    answers: dict[str, dict[str, str]] = {}
    pending: Optional[tuple[str, str]] = None  # (kind, instruction) of the open question
    asked = False                              # a user turn waits for its answer
    unbalanced = malformed = False
    protocol_turns = 0
    dialogue = 0
    for role, text in turns:
        if role == "user":
            dialogue += 1
            if asked:
                unbalanced = True  # two user turns in a row: the first went unanswered
            asked, pending = True, profile.split(text)
            if pending is not None:
                protocol_turns += 1
        elif role == "assistant":
            dialogue += 1
            if not asked:
                unbalanced = True
                continue
            if pending is not None:
                kind, instruction = pending
                got = answers.setdefault(instruction, {})
                got[kind] = text  # a later answer of the same kind replaces the earlier one
                if "precise" in got and "informative" in got:
                    return (instruction, got["precise"], got["informative"]), None
            asked, pending = False, None
        else:  # junk, or a role the protocol does not use (system, ...)
            malformed = True
            asked, pending = False, None
    if dialogue == 0:
        return None, (TRUNCATED_ONLY if truncated and not malformed else PARSE_ERROR)
    if malformed or protocol_turns == 0:
        return None, PARSE_ERROR
    if unbalanced or (asked and not truncated):
        return None, UNBALANCED
    return None, NO_PAIR


def parse(continuation: str, fmt: TurnFormat, profile: ProtocolProfile,
          end_of_text: Sequence[str] = ()) -> tuple[Optional[Triplet], Optional[str], bool]:
    """``(triplet or None, reason or None, truncated)``: ``split_turns`` then ``pair_triplet``."""
    turns, truncated = split_turns(continuation, fmt, end_of_text)
    triplet, reason = pair_triplet(turns, profile, truncated=truncated)
    return triplet, reason, truncated
