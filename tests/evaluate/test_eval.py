"""``adamllm eval`` and ``adamllm.evaluation``: a tiny real backbone on the fixtures of all eight
benchmarks, resume after an interruption, stale predictions, scorer switches, the report files."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from adamllm.benchmark import Sample
from adamllm.cli import cli
from adamllm.domains.benchmarks import BENCHMARK_CLASSES, LayoutBenchmarkConfig
from adamllm.evaluation import EvalTask, EvaluationError, evaluate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
ALL = list(BENCHMARK_CLASSES)
COUNTS = {"slake": 4, "pathvqa": 3, "vqa_rad": 3, "pmc_vqa": 3, "recipe1m": 2, "nutrition5k": 2, "food101": 3,
          "foodseg103": 2}


@pytest.fixture(scope="module")
def adapter(tiny_model):
    from adamllm.backbones.families import Qwen2VLAdapter

    return Qwen2VLAdapter.from_pretrained(tiny_model)


class Interrupted(Exception):
    pass


class Counting:
    """Wraps an adapter: counts the prompts it is asked, and can stop after some batches."""

    def __init__(self, inner, stop_after_batches=None):
        self.inner, self.stop_after, self.batches, self.prompts = inner, stop_after_batches, 0, []
        self.family = getattr(inner, "family", "fake")

    def generate(self, conversations, images, settings=None):
        if self.stop_after is not None and self.batches >= self.stop_after:
            raise Interrupted
        self.batches += 1
        self.prompts += [c[-1]["content"] for c in conversations]
        return self.inner.generate(conversations, images, settings)


def tasks(*names, **options):
    return [EvalTask(BENCHMARK_CLASSES[n](LayoutBenchmarkConfig(source=str(FIXTURES / n), **options)),
                     BENCHMARK_CLASSES[n].domain) for n in names]


def lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def strip_volatile(report):
    return {k: v for k, v in report.items() if k not in ("created",)}


def test_eval_cli_runs_all_eight_benchmarks_end_to_end(tiny_model, tmp_path):
    out = tmp_path / "eval"
    result = CliRunner().invoke(cli, ["eval", "--backbone", "qwen2_vl", "--model", tiny_model,
                                      "--benchmarks", "biomed,food", "--data-root", str(FIXTURES),
                                      "--out", str(out), "--max-new-tokens", "4", "--batch-size", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert list(report["benchmarks"]) == ALL
    assert report["model"] == tiny_model and report["backbone"] == "qwen2_vl" and report["num_processes"] == 1
    for name, entry in report["benchmarks"].items():
        assert (entry["scorer"], entry["scorer_version"]) == ("legacy", "legacy-1")
        assert entry["n_samples"] == COUNTS[name] and entry["n_errors"] == 0
        assert sum(entry["counts"].values()) == COUNTS[name]
        assert entry["generation"]["max_new_tokens"] == 4 and entry["generation"]["do_sample"] is False
        assert entry["data"]["source"] == str(FIXTURES / name)
        assert all(0.0 <= v <= 100.0 for v in entry["scores"].values())
        records = lines(out / name / "predictions.jsonl")
        assert [r["id"] for r in records] == [s.id for s in tasks(name)[0].benchmark.samples()]
        for record in records:
            assert {"id", "benchmark", "prompt", "prediction", "label", "score", "metric"} <= set(record)
    assert set(report["benchmarks"]["slake"]["counts"]) == {"open_recall", "closed_accuracy"}
    assert lines(out / "pmc_vqa" / "predictions.jsonl")[0]["A"] == "CT"
    assert report["averages"]["biomed"]["columns"][:2] == ["slake/open_recall", "slake/closed_accuracy"]
    assert len(report["averages"]["biomed"]["columns"]) == 7 and len(report["averages"]["food"]["columns"]) == 4
    markdown = (out / "report.md").read_text()
    assert "| slake | open_recall |" in markdown and "legacy (legacy-1)" in markdown
    assert "| **food** | average (4 columns) |" in markdown
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in result.output and "| foodseg103 | f1 |" in result.output


def test_rerun_after_an_interruption_skips_finished_samples(adapter, tmp_path):
    names = ["slake", "pmc_vqa"]
    reference = evaluate(Counting(adapter), tasks(*names), tmp_path / "ref", batch_size=2, max_new_tokens=4,
                         model_name="m", progress=False)

    out = tmp_path / "resumed"
    first = Counting(adapter, stop_after_batches=1)
    with pytest.raises(Interrupted):
        evaluate(first, tasks(*names), out, batch_size=2, max_new_tokens=4, model_name="m", progress=False)
    written = (out / "slake" / "predictions.jsonl").read_text()
    assert len(written.splitlines()) == 2 and not (out / "report.json").exists()

    second = Counting(adapter)
    report = evaluate(second, tasks(*names), out, batch_size=2, max_new_tokens=4, model_name="m", progress=False)
    # slake samples 0 and 1 are not asked again; the rest (2 of slake, 3 of pmc_vqa) are
    assert len(second.prompts) == 5 and not any("abnormal" in p or "enlarged" in p for p in second.prompts)
    assert (out / "slake" / "predictions.jsonl").read_text().startswith(written)
    assert report["benchmarks"] == reference["benchmarks"]
    for name in names:
        assert lines(out / name / "predictions.jsonl") == lines(tmp_path / "ref" / name / "predictions.jsonl")

    third = Counting(adapter)
    again = evaluate(third, tasks(*names), out, batch_size=2, max_new_tokens=4, model_name="m", progress=False)
    assert third.prompts == [] and again["benchmarks"] == report["benchmarks"]


def test_other_settings_are_refused_or_restart(adapter, tmp_path):
    evaluate(Counting(adapter), tasks("vqa_rad"), tmp_path, max_new_tokens=4, model_name="m", progress=False)
    with pytest.raises(EvaluationError, match="different generation"):
        evaluate(Counting(adapter), tasks("vqa_rad"), tmp_path, max_new_tokens=5, model_name="m", progress=False)
    with pytest.raises(EvaluationError, match="different model"):
        evaluate(Counting(adapter), tasks("vqa_rad"), tmp_path, max_new_tokens=4, model_name="other", progress=False)
    fresh = Counting(adapter)
    report = evaluate(fresh, tasks("vqa_rad"), tmp_path, max_new_tokens=5, model_name="m", restart_stale=True,
                      progress=False)
    assert len(fresh.prompts) == 3 and report["benchmarks"]["vqa_rad"]["generation"]["max_new_tokens"] == 5


def test_switching_the_scorer_rescores_without_generating(tmp_path):
    class Echo:  # answers every question with a fixed text
        family = "echo"

        def generate(self, conversations, images, settings=None):
            return ["nodule"] * len(conversations)

    legacy = evaluate(Echo(), tasks("slake"), tmp_path, model_name="m", progress=False)
    # "nodule" passes the legacy closed gate for the label "No" (it contains "no"), not the strict one
    assert legacy["benchmarks"]["slake"]["scores"]["closed_accuracy"] == 50.0
    counting = Counting(Echo())
    strict = evaluate(counting, tasks("slake"), tmp_path, scorer="strict", model_name="m", progress=False)
    assert counting.prompts == []
    entry = strict["benchmarks"]["slake"]
    assert (entry["scorer"], entry["scorer_version"], entry["scores"]["closed_accuracy"]) == ("strict", "strict-1", 0.0)
    assert {r["score"] for r in lines(tmp_path / "slake" / "predictions.jsonl")} == {0.0}


def test_a_refused_sample_is_recorded_and_the_batch_goes_on(tmp_path):
    class Picky:
        family = "picky"

        def generate(self, conversations, images, settings=None):
            if any("enlarged" in c[-1]["content"] for c in conversations):
                raise ValueError("sample has 5000 tokens, more than max_length=4096")
            return ["lung"] * len(conversations)

    report = evaluate(Picky(), tasks("slake"), tmp_path, batch_size=4, model_name="m", progress=False)
    entry = report["benchmarks"]["slake"]
    assert entry["n_samples"] == 4 and entry["n_errors"] == 1
    records = lines(tmp_path / "slake" / "predictions.jsonl")
    assert records[1]["prediction"] == "" and "max_length=4096" in records[1]["error"]
    assert records[0]["prediction"] == "lung" and records[0]["score"] == 1.0
    assert records[0]["prompt"] == "Which organ is abnormal in this image?"


def test_prompts_get_the_image_placeholder_once(tmp_path):
    seen = []

    class Recorder:
        family = "rec"

        def generate(self, conversations, images, settings=None):
            seen.extend((c[-1]["content"], len(i), settings.max_new_tokens, settings.do_sample)
                        for c, i in zip(conversations, images))
            return [""] * len(conversations)

    class Tiny:
        name, max_new_tokens = "tiny_bench", 9

        def samples(self):
            return [Sample("a", "<image>\nWhat is it?", "x", image=str(FIXTURES / "slake" / "images" / "gray.png")),
                    Sample("b", "Text only?", "x")]

        def get_scorer(self, scorer="legacy", seed=0):
            from adamllm.domains.scoring import get_scorer

            return get_scorer("recipe1m", "strict")

    evaluate(Recorder(), [Tiny()], tmp_path, model_name="m", progress=False)
    assert seen == [("<image>\nWhat is it?", 1, 9, False), ("Text only?", 0, 9, False)]


def test_example_domain_benchmark_reports_its_own_scorer(tiny_model, tmp_path):
    def run(*extra):
        return CliRunner().invoke(cli, ["eval", "--backbone", "qwen2_vl", "--model", tiny_model, "--benchmarks",
                                        "shapes_vqa,slake", "--source", f"slake={FIXTURES / 'slake'}", "--limit", "2",
                                        "--scorer", "legacy", "--out", str(tmp_path), "--quiet", *extra])

    result = run("--max-new-tokens", "2")
    assert result.exit_code == 0, result.output
    stale = run("--max-new-tokens", "3")
    assert stale.exit_code != 0 and "different generation" in stale.output and "--force" in stale.output
    result = run("--max-new-tokens", "3", "--force")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    shapes = report["benchmarks"]["shapes_vqa"]
    assert (shapes["scorer"], shapes["scorer_version"], shapes["n_samples"]) == ("exact", "exact-1", 2)
    assert report["benchmarks"]["slake"]["n_samples"] == 2
    assert "shapes" in report["averages"] and "biomed" in report["averages"]
    refused = CliRunner().invoke(cli, ["eval", "--backbone", "qwen2_vl", "--model", tiny_model, "--benchmarks",
                                       "shapes_vqa", "--source", f"shapes_vqa={FIXTURES}", "--out", str(tmp_path)])
    assert refused.exit_code != 0 and "benchmark 'shapes_vqa' takes no option source" in refused.output


def test_report_compares_runs_side_by_side(tmp_path):
    def run(label, scorer, prediction):
        class Fixed:
            family = "fixed"

            def generate(self, conversations, images, settings=None):
                return [prediction] * len(conversations)

        evaluate(Fixed(), tasks("slake", "food101"), tmp_path / label, scorer=scorer, model_name=label, progress=False)
        return str(tmp_path / label)

    a = run("base", "legacy", "nodule")
    b = run("tuned", "strict", "apple pie, no")
    result = CliRunner().invoke(cli, ["report", a, b, "--out", str(tmp_path / "cmp.png")])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "| benchmark | metric | base | tuned |" in out
    assert "| slake † | closed_accuracy | 50.00 | 50.00 |" in out  # legacy "nodule" vs strict "no"
    assert "| food101 † | accuracy | " in out and "not comparable" in out
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads(CliRunner().invoke(cli, ["report", a, b, "--json"]).output)
    assert [r["label"] for r in data["runs"]] == ["base", "tuned"]
    assert data["scorer_mismatch"] == ["food101", "slake"]
    missing = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert missing.exit_code != 0 and "no report.json" in missing.output
