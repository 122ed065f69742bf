"""The eight built-in benchmarks on fixture data, and the benchmark contract suite they pass."""
import json
from pathlib import Path

import pytest

from adamllm.domains.benchmarks import (BENCHMARK_CLASSES, DEFAULT_MAX_NEW_TOKENS, LayoutBenchmarkConfig,
                                        PathVQABenchmark)
from adamllm.io import DataError
from adamllm.testing.benchmark_contract import BenchmarkContract

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def build(name, **options):
    return BENCHMARK_CLASSES[name](LayoutBenchmarkConfig(source=str(FIXTURES / name), **options))


def fixture_rows(name):
    return [json.loads(line) for line in (FIXTURES / name / "test.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", ["slake", "pathvqa", "vqa_rad"])
def test_vqa_samples_carry_answer_type(name):
    rows = fixture_rows(name)
    samples = build(name).samples()
    assert [s.prompt for s in samples] == [r["input"] for r in rows]
    assert [s.label for s in samples] == [r["label"] for r in rows]
    assert [s.fields for s in samples] == [{"answer_type": r["answer_type"].upper()} for r in rows]
    assert [s.id for s in samples] == [r.get("id", str(i)) for i, r in enumerate(rows)]
    assert all(Path(s.image).is_file() for s in samples)


def test_pmc_vqa_from_parquet_carries_the_options():
    samples = build("pmc_vqa").samples()
    assert [s.label for s in samples] == ["C", "A", "B"]
    assert samples[0].fields == {"A": "CT", "B": "MRI", "C": "X-ray", "D": "Ultrasound"}
    assert samples[0].prompt.startswith("Question: What kind of image is shown?\nThe choices are:\n(A) CT")
    assert isinstance(samples[0].image, bytes)


def test_food_samples_and_labels():
    food101 = build("food101").samples()
    assert [s.label for s in food101] == ["apple pie", "bibimbap", "beet salad"]  # class names with spaces
    assert all(s.fields == {} for s in food101)
    assert build("nutrition5k").samples()[0].label == ["lettuce", "olives", "bacon"]
    assert build("foodseg103").samples()[0].label == ["french fries", "egg tart"]
    assert build("recipe1m").samples()[1].label.startswith("Green salad")


def test_defaults_options_and_sources():
    # the reference code's budgets (METHOD.md), as the README's benchmark table says
    assert DEFAULT_MAX_NEW_TOKENS == {"slake": 1024, "pathvqa": 1024, "vqa_rad": 1024, "pmc_vqa": 1024,
                                      "recipe1m": 1024, "nutrition5k": 256, "food101": 256, "foodseg103": 256}
    for name, cls in BENCHMARK_CLASSES.items():
        bench = cls()
        assert bench.max_new_tokens == DEFAULT_MAX_NEW_TOKENS[name]
        assert bench.describe()["source"] in ("AdaptLLM/biomed-VQA-benchmark", "AdaptLLM/food-VQA-benchmark")
        assert bench.get_scorer().version == "legacy-1"
    # PathVQA is loaded from its own config (the reference code scored it on VQA_RAD)
    assert PathVQABenchmark().describe() == {"source": "AdaptLLM/biomed-VQA-benchmark",
                                             "config_name": "PathVQA", "split": "test"}
    bench = build("slake", limit=2, max_new_tokens=7, prompt_suffix=" Answer briefly.", scorer="strict")
    samples = bench.samples()
    assert len(samples) == 2 and bench.max_new_tokens == 7
    assert samples[0].prompt == "Which organ is abnormal in this image? Answer briefly."
    assert bench.get_scorer().version == "strict-1" and bench.get_scorer("legacy").version == "legacy-1"
    assert bench.describe() == {"source": str(FIXTURES / "slake"), "prompt_suffix": " Answer briefly."}


def _write(folder, records):
    folder.mkdir(exist_ok=True)
    (folder / "a.png").write_bytes((FIXTURES / "slake" / "images" / "gray.png").read_bytes())
    (folder / "t.jsonl").write_text("".join(json.dumps({"image": "a.png", **r}) + "\n" for r in records))
    return folder


def test_bad_records_are_named(tmp_path):
    folder = _write(tmp_path / "vqa", [{"input": "q", "label": "yes", "answer_type": "CLOSED"},
                                       {"input": "q", "label": "yes", "answer_type": "MAYBE"}])
    with pytest.raises(DataError, match=r"t\.jsonl:2: answer_type must be OPEN or CLOSED"):
        BENCHMARK_CLASSES["slake"](LayoutBenchmarkConfig(source=str(folder))).samples()
    folder = _write(tmp_path / "vqa2", [{"input": "q", "label": "yes"}])
    with pytest.raises(DataError, match=r"t\.jsonl:1: missing field\(s\) answer_type"):
        BENCHMARK_CLASSES["vqa_rad"](LayoutBenchmarkConfig(source=str(folder))).samples()
    folder = _write(tmp_path / "food", [{"input": "q", "label": "apple pie"}, {"input": "q", "label": "pizza pie"}])
    with pytest.raises(DataError, match=r"t\.jsonl:2: .*'pizza pie' is not a class name"):
        BENCHMARK_CLASSES["food101"](LayoutBenchmarkConfig(source=str(folder))).samples()
    folder = _write(tmp_path / "seg", [{"input": "q", "label": ["cake", "spaceship"]}])
    with pytest.raises(DataError, match=r"t\.jsonl:1: .*'spaceship' is not in the FoodSeg103 vocabulary"):
        BENCHMARK_CLASSES["foodseg103"](LayoutBenchmarkConfig(source=str(folder))).samples()
    folder = _write(tmp_path / "dup", [{"id": "a", "input": "q", "label": "x", "answer_type": "OPEN"},
                                       {"id": "a", "input": "q", "label": "y", "answer_type": "OPEN"}])
    with pytest.raises(DataError, match=r"t\.jsonl:2: duplicate id 'a' \(first at .*t\.jsonl:1\)"):
        BENCHMARK_CLASSES["slake"](LayoutBenchmarkConfig(source=str(folder))).samples()
    folder = _write(tmp_path / "pmc", [{"input": "q", "label": "E", "A": "a", "B": "b", "C": "c", "D": "d"}])
    with pytest.raises(DataError, match=r"t\.jsonl:1: PMC-VQA label 'E'"):
        BENCHMARK_CLASSES["pmc_vqa"](LayoutBenchmarkConfig(source=str(folder))).samples()


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="extra"):
        LayoutBenchmarkConfig(sorce="x")


# -- the contract suite, on every built-in benchmark and on the example domain's ------------
class _Fixture(BenchmarkContract):
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.options = {"source": str(FIXTURES / cls.benchmark)}


class TestSlakeContract(_Fixture):
    benchmark = "slake"


class TestPathVQAContract(_Fixture):
    benchmark = "pathvqa"


class TestVQARadContract(_Fixture):
    benchmark = "vqa_rad"


class TestPMCVQAContract(_Fixture):
    benchmark = "pmc_vqa"


class TestRecipe1MContract(_Fixture):
    benchmark = "recipe1m"


class TestNutrition5KContract(_Fixture):
    benchmark = "nutrition5k"


class TestFood101Contract(_Fixture):
    benchmark = "food101"


class TestFoodSeg103Contract(_Fixture):
    benchmark = "foodseg103"


class TestStrictScorerContract(_Fixture):
    benchmark = "slake"
    scorer = "strict"


class TestExampleDomainContract(BenchmarkContract):
    benchmark = "shapes_vqa"
