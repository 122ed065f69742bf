"""Train small byte-level BPE tokenizers offline and deterministically.

There is no model hub here, so tiny checkpoints need a tokenizer built from nothing. This
module generates a synthetic corpus in code (a fixed word list, pseudo-words from a fixed
syllable inventory and sentence templates, all driven by a small self-contained PRNG), trains
a byte-level BPE on it with `tokenizers`, and wraps the result as a `PreTrainedTokenizerFast`.

The same arguments give the same `tokenizer.json` on any machine and any Python version: the
corpus does not depend on the environment (no stdlib sources, no `random` module, no hash
order) and the BPE trainer breaks count ties by token id, which the sorted initial alphabet
fixes.

Special tokens are handed to the trainer, so they take the lowest ids (0, 1, 2, ... in the
order given) and are never split.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

__all__ = [
    "CORPUS_CHARS",
    "build_corpus",
    "build_tokenizer",
    "corpus_lines",
    "train_bpe",
]

#: Default size of the generated training corpus, in characters.
CORPUS_CHARS = 400_000

# Words the tiny models will meet in tests and demos: chat roles, multimodal vocabulary,
# medicine/pathology, food/recipes, remote sensing, charts, multiple-choice answers.
_WORDS = """
a an the and or but not of in on at to from with without by for as is are was were be been
this that these those it its there here what which who whom whose where when why how
yes no true false maybe none all some many few more most less each every both either
image picture photo photograph figure frame scan slide view panel region crop patch pixel
caption describe description shows showing shown depicts depicting visible seen appears
question answer answers options option choose choice correct incorrect best following
user assistant system helpful you are your please briefly explain reason step because
color colour red green blue yellow black white gray grey orange purple pink brown dark light
square circle triangle rectangle line dot shape large small big tiny left right top bottom
center middle upper lower front back above below near far inside outside next between
person man woman child people dog cat bird car bus tree house street road water sky field
pathology tumor tumour tissue cell cells nucleus nuclei biopsy specimen stain staining
benign malignant carcinoma adenoma lesion lesions mass necrosis inflammation infiltrate
histology histopathology microscopy magnification tumor grade stage margin invasive normal
radiology xray x-ray ct mri ultrasound chest lung lungs heart liver kidney brain bone
fracture opacity nodule effusion pneumonia edema consolidation contrast axial sagittal
diagnosis finding findings impression patient clinical history symptom symptoms disease
recipe ingredient ingredients dish cook cooking bake baking boil fry chop slice mix stir
salt pepper sugar flour butter oil egg eggs milk cheese tomato onion garlic rice pasta
bread soup salad chicken beef fish sauce minutes cup cups tablespoon teaspoon gram grams
oven pan pot bowl plate serve serves serving heat add until golden fresh sweet spicy
satellite aerial remote sensing building buildings farmland forest river lake runway
chart plot graph table axis value values bar bars trend increase decrease percent total
count number how many is there are there what is the shown in this image
""".split()

# Syllables for pseudo-words. They give the BPE enough distinct material to fill a vocabulary
# of a few thousand entries with plausible sub-word units.
_ONSETS = ("b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
           "z", "br", "ch", "cl", "cr", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr")
_NUCLEI = ("a", "e", "i", "o", "u", "ai", "ea", "ee", "io", "ou", "y")
_CODAS = ("", "", "", "n", "r", "s", "t", "l", "m", "x", "nd", "st", "ng", "ck")

_TEMPLATES = (
    "The image shows a {adj} {noun} {prep} the {noun2}.",
    "Question: What is shown in this image? Answer: {Noun}.",
    "Is there a {noun} in the picture? {yesno}.",
    "How many {noun}s are visible? {num}.",
    "Describe the image briefly. A {adj} {noun} near a {noun2}, {num} {unit}.",
    "Which option is correct? A. {noun} B. {noun2} C. {word} D. {pseudo} Answer: {letter}",
    "Caption: {Adj} {noun} with {pseudo} {word}, {num}% {noun2}.",
    "Recipe: {pseudo} {dish}. Ingredients: {num} {unit} {food}, {num2} {unit} {food2}. "
    "Steps: {verb} the {food} for {num} minutes.",
    "Histopathology slide at {num}x magnification shows {adj} {tissue} with {finding}.",
    "Findings: {finding} in the {organ}. Impression: {yesno2} {diagnosis}.",
    "<|im_start|>user\n{Noun}? <|im_end|>\n<|im_start|>assistant\n{yesno}.<|im_end|>",
    "{pseudo} {pseudo2} {word} {pseudo3}. {Pseudo} {word2} {num}.",
    "You are a helpful assistant. {Noun} {pseudo} {word} {pseudo2}.",
    "The {noun} is {prep} the {adj} {noun2}; score {num}.{num2} out of {num3}.",
)

_ADJ = ("red", "green", "blue", "yellow", "small", "large", "dark", "light", "round", "square",
        "benign", "malignant", "normal", "fresh", "golden", "spicy", "sweet", "invasive")
_NOUN = ("image", "cell", "tumor", "tissue", "dog", "cat", "car", "tree", "house", "dish",
         "square", "circle", "nodule", "lesion", "building", "river", "chart", "bar", "bowl")
_PREP = ("in", "on", "near", "above", "below", "inside", "next to", "behind", "left of")
_UNITS = ("cups", "grams", "tablespoons", "teaspoons", "minutes", "pixels", "mm", "cm")
_FOOD = ("flour", "sugar", "butter", "rice", "pasta", "tomato", "onion", "garlic", "chicken",
         "cheese", "egg", "milk", "beef", "fish")
_DISH = ("soup", "salad", "bread", "pasta", "curry", "cake", "stew", "pie")
_VERBS = ("bake", "boil", "fry", "stir", "mix", "chop", "slice", "heat", "serve", "add")
_TISSUE = ("epithelium", "stroma", "glands", "nuclei", "cells", "tissue", "mucosa")
_FINDING = ("necrosis", "inflammation", "atypia", "mitoses", "fibrosis", "edema", "opacity",
            "effusion", "consolidation", "a nodule", "no abnormality")
_ORGAN = ("lung", "liver", "kidney", "brain", "breast", "colon", "chest", "bone", "heart")
_DIAGNOSIS = ("carcinoma", "adenoma", "pneumonia", "fracture", "normal study", "metastasis")


class _Rng:
    """A 64-bit linear congruential generator: tiny, fast and identical everywhere."""

    _MASK = (1 << 64) - 1

    def __init__(self, seed: int) -> None:
        self.state = (seed * 6364136223846793005 + 1442695040888963407) & self._MASK

    def next(self) -> int:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & self._MASK
        return self.state >> 33  # the high bits of an LCG are the good ones

    def below(self, n: int) -> int:
        return self.next() % n

    def pick(self, items: Sequence):
        return items[self.below(len(items))]

    def zipf_pick(self, items: Sequence):
        """Pick with a Zipf-like skew (early items more often): min of two uniform draws."""
        return items[min(self.below(len(items)), self.below(len(items)))]


def _pseudo_words(rng: _Rng, count: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        word = "".join(rng.pick(_ONSETS) + rng.pick(_NUCLEI) for _ in range(1 + rng.below(3)))
        word += rng.pick(_CODAS)
        if word not in seen:
            seen.add(word)
            out.append(word)
    return out


def corpus_lines(num_chars: int = CORPUS_CHARS, seed: int = 0) -> Iterator[str]:
    """Yield deterministic synthetic text lines until about `num_chars` characters."""
    rng = _Rng(seed)
    pseudo = _pseudo_words(rng, 3000)
    total = 0
    while total < num_chars:
        template = rng.pick(_TEMPLATES)
        fields = {
            "adj": rng.pick(_ADJ), "noun": rng.pick(_NOUN), "noun2": rng.pick(_NOUN),
            "prep": rng.pick(_PREP), "unit": rng.pick(_UNITS), "food": rng.pick(_FOOD),
            "food2": rng.pick(_FOOD), "dish": rng.pick(_DISH), "verb": rng.pick(_VERBS),
            "tissue": rng.pick(_TISSUE), "finding": rng.pick(_FINDING),
            "organ": rng.pick(_ORGAN), "diagnosis": rng.pick(_DIAGNOSIS),
            "word": rng.pick(_WORDS), "word2": rng.pick(_WORDS),
            "pseudo": rng.zipf_pick(pseudo), "pseudo2": rng.zipf_pick(pseudo),
            "pseudo3": rng.zipf_pick(pseudo),
            "yesno": rng.pick(("Yes", "No", "yes", "no")),
            "yesno2": rng.pick(("", "no evidence of", "consistent with", "suspicious for")),
            "letter": rng.pick(("A", "B", "C", "D")),
            "num": str(rng.below(100)), "num2": str(rng.below(1000)),
            "num3": str(rng.below(10) + 1),
        }
        for key in ("adj", "noun", "pseudo"):
            fields[key.capitalize()] = fields[key].capitalize()
        line = template.format(**fields)
        # Now and then a run of plain words, upper-cased words and punctuation for variety.
        if rng.below(4) == 0:
            words = [rng.zipf_pick(_WORDS) for _ in range(4 + rng.below(8))]
            if rng.below(3) == 0:
                words = [w.upper() if rng.below(2) else w.capitalize() for w in words]
            line += " " + " ".join(words) + rng.pick((".", "?", "!", ",", ":", ";"))
        total += len(line) + 1
        yield line


@functools.lru_cache(maxsize=4)
def build_corpus(num_chars: int = CORPUS_CHARS, seed: int = 0) -> tuple[str, ...]:
    """The deterministic corpus as a tuple of lines (cached)."""
    return tuple(corpus_lines(num_chars, seed))


@functools.lru_cache(maxsize=16)
def _train_bpe_json(vocab_size: int, special_tokens: tuple[str, ...], num_chars: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(build_corpus(num_chars), trainer=trainer)
    return tok.to_str()


def train_bpe(vocab_size: int, special_tokens: Sequence[str] = (), num_chars: int = CORPUS_CHARS):
    """Train a byte-level BPE `tokenizers.Tokenizer` on the synthetic corpus.

    `special_tokens` get ids 0..len-1 in the order given. The result is cached per arguments,
    and each call returns a fresh object.
    """
    from tokenizers import Tokenizer

    if vocab_size < 256 + len(special_tokens):
        raise ValueError(f"vocab_size {vocab_size} is smaller than 256 bytes + special tokens")
    tok = Tokenizer.from_str(_train_bpe_json(vocab_size, tuple(special_tokens), num_chars))
    if tok.get_vocab_size() != vocab_size:
        raise RuntimeError(
            f"BPE reached only {tok.get_vocab_size()} of {vocab_size} tokens; enlarge the corpus"
        )
    return tok


def build_tokenizer(
    vocab_size: int,
    special_tokens: Sequence[str],
    *,
    bos_token: str | None = None,
    eos_token: str | None = None,
    pad_token: str | None = None,
    unk_token: str | None = None,
    chat_template: str | None = None,
    padding_side: str = "right",
    model_max_length: int = 32768,
):
    """Train (or fetch from cache) a BPE and wrap it as a `PreTrainedTokenizerFast`.

    Every token named in bos/eos/pad/unk must be one of `special_tokens`; all of
    `special_tokens` are registered as special tokens of the wrapper (never split, skipped by
    ``decode(..., skip_special_tokens=True)``). No post-processor is set: BOS comes from the chat
    template where a family uses one, so nothing is doubled.
    """
    from transformers import PreTrainedTokenizerFast

    named = {"bos_token": bos_token, "eos_token": eos_token, "pad_token": pad_token,
             "unk_token": unk_token}
    for name, token in named.items():
        if token is not None and token not in special_tokens:
            raise ValueError(f"{name}={token!r} is not among the special tokens")
    kwargs = {k: v for k, v in named.items() if v is not None}
    tok = PreTrainedTokenizerFast(
        tokenizer_object=train_bpe(vocab_size, special_tokens),
        chat_template=chat_template,
        padding_side=padding_side,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
        **kwargs,
    )
    # Register every special token as such (skip_special_tokens, never split, low ids kept).
    missing = [t for t in special_tokens if t not in tok.all_special_tokens]
    if missing:
        tok.add_special_tokens({"additional_special_tokens": missing})
    if len(tok) != vocab_size:
        raise RuntimeError(f"tokenizer has {len(tok)} tokens, expected {vocab_size}")
    return tok
