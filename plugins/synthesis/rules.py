"""The ``rules`` synthesizer: question-answer triplets templated from the caption text, no model.

It is the manual-rule baseline the paper compares the tuned synthesizer with, and a fast
synthesizer for tests. Only the caption is read. Four rules look for facts in it:

- ``colour``: a colour word followed by the noun it describes ("a red square" -> red, square);
- ``count``: a number word or whole numeral (2 to 999) followed by a noun, not a unit (colour and
  size words skipped: "three round cells" -> three, cells; "2 eggs" -> 2, eggs). A quantity that is
  not a whole count is no count fact: a fraction ("1/2", "½"), a mixed number ("1 1/2", "1-1/2",
  "1½"), a decimal ("0.5") or a range ("2-3", "2 to 3", "2 or 3") is read as one token and skipped,
  and so is a number right after a number or a size's "x" / "by" ("1/2 dozen", '9"x13" pan');
  measures such as "teaspoon" or "cups" are units, so "1/2 teaspoon salt" and "2 tablespoons oil"
  give no count;
- ``object``: the first noun after "a" / "an" / "the" (colour and size words skipped, words
  such as "image" or "photo" that name the picture itself passed over);
- ``subject``: the first sentence's words before its first verb or preposition, at most six.

Every match is a candidate fact; one is picked per pair, then a question frame (``QUESTIONS``)
and an explanation frame (``EXPLANATIONS``), each by a hash of the seed, the pair's id and what
is being picked, so the same pairs and seed give the same triplets in any process and any order,
and another seed picks other frames. ``precise`` is the short fact; ``informative`` quotes the
caption sentence that holds it (a window of words around the fact when the sentence is long) and
ends with the fact. A caption with fewer than ``min_caption_words`` words, or in which no rule
applies, yields None. Each triplet records the ``rule`` that fired; ``stats`` counts them.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field

from adamllm.records import ImageCaptionPair, TaskTriplet

RULES = ("colour", "count", "object", "subject")

COLOURS = frozenset(
    "red green blue yellow purple orange white black pink brown grey gray violet cyan magenta beige "
    "golden silver crimson turquoise maroon navy teal".split())
NUMBERS = frozenset(
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty dozen".split())
UNITS = frozenset(
    "mm cm m km nm um µm g kg mg ml l cups cup tbsp tsp oz lb lbs min mins minute minutes h hr hrs hour "
    "hours second seconds sec secs day days week weeks month months year years percent degrees times "
    "x fold kda hz khz mhz "
    # kitchen measures: a count of them is an amount, not a number of things in the picture
    "teaspoon teaspoons tablespoon tablespoons tbsps tbs tbl tsps ounce ounces pound pounds gram grams "
    "kilogram kilograms milligram milligrams millilitre millilitres milliliter milliliters litre litres "
    "liter liters quart quarts qt pint pints pt gallon gallons pinch pinches dash dashes inch inches "
    "servings portions calories kcal".split())
SIZES = frozenset(
    "small large big little tiny huge single round tall short long wide narrow thin thick bright dark "
    "light pale deep plain simple few several many old new young fresh ripe raw whole medium".split())
META = frozenset(
    "image images picture pictures photo photos photograph photographs figure figures scan scans view "
    "views illustration illustrations panel panels drawing close-up closeup".split())
STOPWORDS = frozenset(
    "a an the this that these those it its they them their there here and or but nor so yet of on in "
    "at to by for from with without into onto over under above below near beside between behind "
    "against along across around through is are was were be been being am has have had do does did "
    "as which who whom whose what when where while than then also not no very more most less least "
    "each every some any all both either neither one".split())
#: Where a first sentence's subject ends: common verbs and prepositions.
SUBJECT_ENDS = frozenset(
    "is are was were has have had shows show showing shown displays display displaying depicts depict "
    "depicting contains contain containing sits sit sitting lies lie lying stands stand standing "
    "appears appear appearing looks look looking features feature featuring reveals reveal revealing "
    "demonstrates demonstrate demonstrating presents present presenting includes include including "
    "can may will of on in at with under over above below beside near against from by for into onto "
    "next along across inside within".split())

#: Question frames; ``{q}`` is the rule's noun phrase ("the colour of the square").
QUESTIONS = (
    "What is {q}?",
    "Can you tell me {q}?",
    "Looking at the image, what is {q}?",
    "Based on the picture, what is {q}?",
    "Identify {q}.",
    "Please state {q}.",
    "What would you say {q} is?",
    "In a word or two, what is {q}?",
    "Tell me {q}.",
    "From what you can see, what is {q}?",
    "Briefly, what is {q}?",
    "Name {q}.",
)
#: Explanation frames: the caption sentence (``{quote}`` whole, ``{core}`` without its final
#: punctuation), then the fact (``{answer}``) last.
EXPLANATIONS = (
    'The caption says: "{quote}" So {q} is {answer}.',
    'According to the description, "{core}", so {q} is {answer}.',
    'The image is described as "{core}"; therefore {q} is {answer}.',
)
#: A longer sentence is quoted as a window of this many words around the fact.
QUOTE_WORDS = 24

#: Unicode vulgar fractions ("½").
_VULGAR = "¼½¾⅐⅑⅒⅓⅔⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞"
_NUMERAL = r"\d+(?:[.,]\d+)*"
#: A quantity that is not a whole count, matched as one token: a fraction or mixed number
#: ("1/2", "1 1/2", "1-1/2", "½", "1½", "1 ½") or a range ("2-3", "2 – 3", "2 to 3", "2 or 3").
_QUANTITY = (rf"(?:\d+(?:\s+|-)?)?(?:\d+\s*[/⁄]\s*\d+|[{_VULGAR}])"
             rf"|{_NUMERAL}(?:\s*[-–—~]\s*|\s+(?:to|or)\s+){_NUMERAL}(?![A-Za-z\d])")
_WORD = re.compile(rf"[A-Za-z]+(?:[-'][A-Za-z]+)*|{_QUANTITY}|{_NUMERAL}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


class RulesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(64, ge=1, description="Pairs per synthesize call.")
    seed: Optional[int] = Field(None, description="Seed of the fact and template choices (default: the run's seed).")
    min_caption_words: int = Field(3, ge=1, description="Captions with fewer words yield no triplet.")


@dataclass(frozen=True)
class Fact:
    """One candidate: which rule, the question's noun phrase, the precise answer, the answer as
    the explanation ends with it, and where it is (sentence text, word index in that sentence)."""

    rule: str
    q: str
    precise: str
    answer: str
    sentence: str
    position: int


def _pick(seed: int, pair_id: str, what: str, n: int) -> int:
    """A stable index in ``range(n)``: the first 8 bytes of sha256("seed/id/what"), big-endian, mod n."""
    digest = hashlib.sha256(f"{seed}/{pair_id}/{what}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n


def sentences(caption: str) -> list[str]:
    return [s for s in (" ".join(part.split()) for part in _SENTENCE_END.split(caption)) if s]


def _is_noun(word: str) -> bool:
    low = word.lower()
    return (low.isalpha() or "-" in low) and len(low) > 1 and low not in STOPWORDS \
        and low not in COLOURS and low not in NUMBERS and low not in SIZES and low not in SUBJECT_ENDS


def _skip_adjectives(words: list[str], j: int, most: int = 3) -> int:
    """The index of the first word at or after ``j`` that is not a colour or size word (at most ``most`` skipped)."""
    end = min(len(words), j + most)
    while j < end and (words[j].lower() in COLOURS or words[j].lower() in SIZES):
        j += 1
    return j


def _colour_facts(sentence: str, words: list[str]) -> list[Fact]:
    facts = []
    for i, word in enumerate(words[:-1]):
        noun = words[i + 1]
        if word.lower() in COLOURS and _is_noun(noun) and noun.lower() not in META:
            colour = word.lower()
            facts.append(Fact("colour", f"the colour of the {noun.lower()}", colour, colour, sentence, i))
    return facts


def _is_quantity(word: str) -> bool:
    """A numeric token (numeral, decimal, fraction, range), as opposed to a word."""
    return word[0].isdigit() or word[0] in _VULGAR


def _after_quantity(words: list[str], i: int) -> bool:
    """Whether word ``i`` continues a quantity or a size: right after a numeric token ("1/2 dozen",
    "2 12 ounce cans") or after one and "x" / "by" ('9"x13" pan', "15 by 9 inch")."""
    if i and _is_quantity(words[i - 1]):
        return True
    return i > 1 and words[i - 1].lower() in ("x", "by") and _is_quantity(words[i - 2])


def _count_facts(sentence: str, words: list[str]) -> list[Fact]:
    facts = []
    for i, word in enumerate(words[:-1]):
        low = word.lower()
        if not (low in NUMBERS or (low.isdigit() and 1 < int(low) < 1000)):  # fractions, decimals, ranges
            continue
        if _after_quantity(words, i):
            continue
        j = _skip_adjectives(words, i + 1)
        if j < len(words) and _is_noun(words[j]) and words[j].lower() not in UNITS:
            facts.append(Fact("count", f"the number of {words[j].lower()}", low, low, sentence, i))
    return facts


def _object_fact(sentence: str, words: list[str]) -> Optional[Fact]:
    for i, word in enumerate(words):
        article = word.lower()
        if article not in ("a", "an", "the"):
            continue
        j = _skip_adjectives(words, i + 1)
        if j < len(words) and _is_noun(words[j]) and words[j].lower() not in META:
            noun = words[j].lower()
            if article != "the":  # the adjectives in between are dropped: "an old lighthouse" -> "a lighthouse"
                article = "an" if noun[0] in "aeiou" else "a"
            return Fact("object", "the main object shown", noun, f"{article} {noun}", sentence, j)
    return None


def _subject_fact(sentence: str, words: list[str]) -> Optional[Fact]:
    end = next((k for k, w in enumerate(words) if w.lower() in SUBJECT_ENDS), None)
    if end is None or not 1 <= end <= 6 or end == len(words):
        return None
    head = words[:end]
    if not any(_is_noun(w) and w.lower() not in META for w in head):
        return None
    if head[0].lower() in ("a", "an", "the", "this", "that", "these", "those", "some"):
        head = [head[0].lower(), *head[1:]]
    subject = " ".join(head)
    return Fact("subject", "the main subject described", subject, subject, sentence, 0)


def facts(caption: str) -> list[Fact]:
    """Every candidate fact of a caption, rule by rule (``RULES`` order), in caption order."""
    parts = [(s, _WORD.findall(s)) for s in sentences(caption)]
    found: list[Fact] = []
    for s, words in parts:
        found += _colour_facts(s, words)
    for s, words in parts:
        found += _count_facts(s, words)
    objects = (_object_fact(s, words) for s, words in parts)
    found += [f for f in objects if f is not None][:1]
    if parts:
        subject = _subject_fact(*parts[0])
        if subject is not None:
            found.append(subject)
    return found


def quote(fact: Fact) -> str:
    """The sentence holding the fact, or a window of ``QUOTE_WORDS`` words around it (with "...")."""
    tokens = fact.sentence.split()
    if len(tokens) <= QUOTE_WORDS + 6:
        return fact.sentence
    # the fact's word index counts regex words; whitespace tokens are close enough for a window
    start = max(0, min(fact.position - QUOTE_WORDS // 2, len(tokens) - QUOTE_WORDS))
    window = " ".join(tokens[start:start + QUOTE_WORDS])
    return ("... " if start else "") + window + (" ..." if start + QUOTE_WORDS < len(tokens) else "")


class RulesSynthesizer:
    """See the module docstring. ``stats``: ``by_rule`` (triplets per rule), ``no_rule`` and
    ``too_short`` (pairs without a triplet), counted over this instance's calls."""

    def __init__(self, config: RulesConfig | None = None) -> None:
        self.config = config if config is not None else RulesConfig()
        self.batch_size = self.config.batch_size
        self.stats: dict = {"by_rule": {rule: 0 for rule in RULES}, "no_rule": 0, "too_short": 0}

    def _seed(self, ctx) -> int:
        if self.config.seed is not None:
            return self.config.seed
        return int(getattr(getattr(ctx, "config", None), "seed", 0) or 0)

    def triplet(self, pair: ImageCaptionPair, seed: int) -> Optional[TaskTriplet]:
        """The pair's triplet, or None (no stats are counted here)."""
        if len(_WORD.findall(pair.caption)) < self.config.min_caption_words:
            return None
        candidates = facts(pair.caption)
        if not candidates:
            return None
        fact = candidates[_pick(seed, pair.id, "fact", len(candidates))]
        question = QUESTIONS[_pick(seed, pair.id, "question", len(QUESTIONS))].format(q=fact.q)
        sentence = quote(fact)
        core = sentence.rstrip(".!?;: ").rstrip()
        informative = EXPLANATIONS[_pick(seed, pair.id, "explanation", len(EXPLANATIONS))].format(
            quote=sentence if sentence[-1] in ".!?" else sentence + ".", core=core, q=fact.q, answer=fact.answer)
        return TaskTriplet(id=pair.id, image=pair.image, instruction=question, precise=fact.precise,
                           informative=informative, rule=fact.rule)

    def synthesize(self, pairs: Sequence[ImageCaptionPair], ctx) -> list[Optional[TaskTriplet]]:
        seed = self._seed(ctx)
        results = []
        for pair in pairs:
            result = self.triplet(pair, seed)
            if result is not None:
                self.stats["by_rule"][result.rule] += 1
            elif len(_WORD.findall(pair.caption)) < self.config.min_caption_words:
                self.stats["too_short"] += 1
            else:
                self.stats["no_rule"] += 1
            results.append(result)
        return results
