"""One scorer per (benchmark, scorer kind): per-sample scores and their averages ×100.

"legacy" reproduces how the paper's numbers were computed, quirks included; "strict" fixes the
quirks (see vqa.py, text.py and vocabulary.py for each difference). Reports should name `version`.
Benchmark names are accepted case-insensitively with "-" for "_" ("PMC-VQA", "VQA_RAD", "PathVQA").

Record fields: `prediction` (a string; "" for no answer) and `label`, plus `answer_type`
(OPEN/CLOSED) for the VQA sets and `A`..`D` for PMC-VQA. Accepted labels (anything else, e.g. a
null, a list or an empty string where text is read, raises ValueError rather than being scored):
- SLAKE / PathVQA / VQA-RAD / Recipe1M: a non-empty string;
- PMC-VQA: the letter (any case); a label that equals exactly one option text also works;
- Food101: the class name (spaces or underscores, any case) or its index 0..100 (int or digits);
- Nutrition5K / FoodSeg103: a non-empty list of names, or one string of comma-separated names.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from adamllm.benchmark import SampleScore

from . import choice, text, vocabulary, vqa

SCORERS = ("legacy", "strict")
BENCHMARKS = ("slake", "pathvqa", "vqa_rad", "pmc_vqa", "recipe1m", "nutrition5k", "food101",
              "foodseg103")
VQA_BENCHMARKS = ("slake", "pathvqa", "vqa_rad")
VERSIONS = {"legacy": "legacy-1", "strict": "strict-1"}
METRICS = {
    **{name: ("open_recall", "closed_accuracy") for name in VQA_BENCHMARKS},
    "pmc_vqa": ("accuracy",),
    "recipe1m": ("rouge_l_f",),
    "nutrition5k": ("recall",),
    "food101": ("accuracy",),
    "foodseg103": ("f1",),
}
PMC_LETTERS = ("A", "B", "C", "D")


def _text(value) -> str:
    return "" if value is None else str(value)


def _shown(value) -> str:
    """A value as an error message shows it: JSON's names, short."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57]) + "..."
    kind = {bool: "boolean", int: "number", float: "number", list: "list", tuple: "list",
            dict: "object"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


def _prediction(record: Mapping) -> str:
    """The prediction: a string ("" is an empty answer); a null or any other type is not scored."""
    value = record["prediction"]
    if not isinstance(value, str):
        raise ValueError(f"prediction must be a string, got {_shown(value)}")
    return value


def _label_text(record: Mapping) -> str:
    """A label read as text: a non-empty string (not a list turned into text, not blank)."""
    value = record["label"]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"label must be a non-empty string, got {_shown(value)}")
    return value


def _label_names(record: Mapping) -> list[str]:
    """A Nutrition5K / FoodSeg103 label: a non-empty list of names, or a string of comma-separated
    names with at least one name."""
    value = record["label"]
    if isinstance(value, str):
        names = [name for name in value.split(",") if name.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(name, str) and name.strip() for name in value):
        names = list(value)
    else:
        names = []
    if not names:
        raise ValueError("label must be a non-empty list of names or a string of comma-separated names, "
                         f"got {_shown(value)}")
    return names


def _score_vqa(record: Mapping, index: int, strict: bool, seed: int) -> SampleScore:
    prediction, label = _prediction(record), _label_text(record)
    kind = _text(record["answer_type"]).upper()
    if kind == "OPEN":
        fn = vqa.open_exact_strict if strict else vqa.open_recall_legacy
        return SampleScore("open_recall", fn(prediction, label))
    if kind == "CLOSED":
        fn = vqa.closed_accuracy_strict if strict else vqa.closed_accuracy_legacy
        return SampleScore("closed_accuracy", fn(prediction, label))
    raise ValueError(f"answer_type must be OPEN or CLOSED, got {record['answer_type']!r}")


def _pmc_label(label, options: Mapping[str, str]) -> str:
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"PMC-VQA label must be a letter A-D or an option text, got {_shown(label)}")
    given = label.strip()
    if given.upper() in options:
        return given.upper()
    matches = [key for key, option in options.items() if option.strip().lower() == given.lower()]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"PMC-VQA label {label!r} is neither a letter A-D nor exactly one option text")


def _score_pmc_vqa(record: Mapping, index: int, strict: bool, seed: int) -> SampleScore:
    options = {letter: _text(record[letter]) for letter in PMC_LETTERS}
    gold = _pmc_label(record["label"], options)
    chosen = choice.parse_choice(_prediction(record), options, choice.sample_rng(seed, record, index))
    return SampleScore("accuracy", float(chosen == gold))


def _food101_label(label) -> str:
    classes = vocabulary.food101_classes()
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(classes):
        return str(label)
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"Food101 label must be a class name or an index 0..100, got {_shown(label)}")
    given = label.strip()
    if given.isdigit() and int(given) < len(classes):
        return str(int(given))
    name = given.replace("_", " ").lower()
    if name in classes:
        return str(classes.index(name))
    raise ValueError(f"Food101 label {label!r} is not a class name or an index 0..100")


def _score_food101(record: Mapping, index: int, strict: bool, seed: int) -> SampleScore:
    gold = _food101_label(record["label"])
    options = {str(i): name for i, name in enumerate(vocabulary.food101_classes())}
    chosen = choice.parse_choice(_prediction(record), options, choice.sample_rng(seed, record, index))
    return SampleScore("accuracy", float(chosen == gold))


def _score_recipe1m(record: Mapping, index: int, strict: bool, seed: int) -> SampleScore:
    fn = text.rouge_l_strict if strict else text.rouge_l_legacy
    return SampleScore("rouge_l_f", fn(_prediction(record), _label_text(record)))


def _score_nutrition5k(record: Mapping, index: int, strict: bool, seed: int) -> SampleScore:
    names = vocabulary.nutrition5k_vocab()
    gold = names.label_ids(_label_names(record))
    found = names.find(_prediction(record), word_boundary=strict)
    return SampleScore("recall", vocabulary.sample_recall(found, gold))


def _score_foodseg103(record: Mapping, index: int, strict: bool, seed: int) -> SampleScore:
    names = vocabulary.foodseg103_vocab()
    gold = names.label_ids(_label_names(record))
    found = names.find(_prediction(record), word_boundary=strict)
    return SampleScore("f1", vocabulary.sample_f1(found, gold))


_SAMPLE_SCORERS: dict[str, Callable[[Mapping, int, bool, int], SampleScore]] = {
    **{name: _score_vqa for name in VQA_BENCHMARKS},
    "pmc_vqa": _score_pmc_vqa,
    "recipe1m": _score_recipe1m,
    "nutrition5k": _score_nutrition5k,
    "food101": _score_food101,
    "foodseg103": _score_foodseg103,
}


def canonical_benchmark(name: str) -> str:
    """"PMC-VQA" -> "pmc_vqa"; unknown names raise ValueError listing the valid ones."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}")
    return key


@dataclass(frozen=True)
class BenchmarkScorer:
    benchmark: str
    scorer: str = "legacy"
    seed: int = 0

    @property
    def version(self) -> str:
        return VERSIONS[self.scorer]

    @property
    def metrics(self) -> tuple[str, ...]:
        return METRICS[self.benchmark]

    def score_sample(self, record: Mapping, index: int = 0) -> SampleScore:
        """Score one record; `index` seeds the multiple-choice fallback when there is no id."""
        return _SAMPLE_SCORERS[self.benchmark](record, index, self.scorer == "strict", self.seed)

    def aggregate(self, scores: Iterable[SampleScore]) -> dict:
        """{metric: mean ×100, "n_<metric>": count}; metrics without samples are left out."""
        values: dict[str, list[float]] = {metric: [] for metric in self.metrics}
        for score in scores:
            if score.metric not in values:
                raise ValueError(f"{self.benchmark} does not report metric {score.metric!r}")
            values[score.metric].append(score.value)
        result = {}
        for metric, vals in values.items():
            if vals:
                result[metric] = 100.0 * sum(vals) / len(vals)
                result[f"n_{metric}"] = len(vals)
        return result


def get_scorer(benchmark: str, scorer: str = "legacy", seed: int = 0) -> BenchmarkScorer:
    if scorer not in SCORERS:
        raise ValueError(f"unknown scorer {scorer!r}; valid: {', '.join(SCORERS)}")
    return BenchmarkScorer(canonical_benchmark(benchmark), scorer, int(seed))


def score_records(benchmark: str, records: Iterable[Mapping], scorer: str = "legacy",
                  seed: int = 0) -> dict:
    """Score and aggregate records; a record that cannot be scored raises naming its index."""
    judge = get_scorer(benchmark, scorer, seed)
    scores = []
    for index, record in enumerate(records):
        try:
            scores.append(judge.score_sample(record, index))
        except (KeyError, ValueError) as error:
            raise ValueError(f"{judge.benchmark} record {index}: {error}") from error
    return judge.aggregate(scores)
