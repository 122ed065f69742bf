"""VQA answer normalisation: the VQA-v2 rules as LLaVA-Med applies them, quirks included.

The paper's open/closed VQA numbers were computed after this normalisation, so the legacy scorer
keeps its oddities on purpose:

- each mark in `MARKS` is deleted when, in the text as given, it stands next to a space or any
  "digit,digit" occurs anywhere; otherwise it becomes a space (":", "'", "%", "*" are kept);
- periods not followed by a digit are deleted, but only the first 32 of them: the original
  passes `re.UNICODE` (== 32) where `re.sub` expects its `count` argument. `period_limit=None`
  removes the cap (the strict scorer does that);
- number words "none", "zero".."ten" become digits, the articles a/an/the are dropped, and common
  contractions written without their apostrophe get it back (our own list; see `CONTRACTIONS`).
"""
from __future__ import annotations

import re

MARKS = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
         ",", "?", "!")
LEGACY_PERIOD_LIMIT = 32

_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
_PERIOD = re.compile(r"\.(?!\d)")
_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
_ARTICLES = frozenset({"a", "an", "the"})
# Apostrophe-less spellings that are not ordinary words themselves ("its", "well", "were", "shed"
# and "ill" are deliberately absent).
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldnt": "couldn't",
    "couldve": "could've", "didnt": "didn't", "doesnt": "doesn't", "dont": "don't",
    "hadnt": "hadn't", "hasnt": "hasn't", "havent": "haven't", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "im": "i'm", "isnt": "isn't", "itd": "it'd",
    "itll": "it'll", "ive": "i've", "lets": "let's", "mightnt": "mightn't", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "oclock": "o'clock",
    "shant": "shan't", "shes": "she's", "shouldnt": "shouldn't", "shouldve": "should've",
    "thats": "that's", "thered": "there'd", "therere": "there're", "theres": "there's",
    "theyd": "they'd", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "wasnt": "wasn't", "werent": "weren't", "weve": "we've", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whod": "who'd", "wholl": "who'll", "whos": "who's", "whove": "who've",
    "whys": "why's", "wont": "won't", "wouldnt": "wouldn't", "wouldve": "would've",
    "yall": "y'all", "youd": "you'd", "youll": "you'll", "youre": "you're", "youve": "you've",
}


def strip_punctuation(text: str, period_limit: int | None = LEGACY_PERIOD_LIMIT) -> str:
    """Delete or space out the marks, judging each against the text as given, then drop periods."""
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in MARKS:
        if delete_all or mark + " " in text or " " + mark in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD.sub("", out, count=0 if period_limit is None else period_limit)


def normalize_answer(text: str, period_limit: int | None = LEGACY_PERIOD_LIMIT) -> str:
    """Lower-case, strip punctuation, map number words, drop articles, restore contractions."""
    words = []
    for word in strip_punctuation(text.lower(), period_limit).split():
        word = _NUMBER_WORDS.get(word, word)
        if word not in _ARTICLES:
            words.append(CONTRACTIONS.get(word, word))
    return " ".join(words)
