"""Bad input in evaluation, under the one policy (``on_bad_record``: skip sets a bad sample aside in
``OUT/<benchmark>/rejected.jsonl`` and leaves it out of the scores; error stops naming it): labels
the scorer cannot read, unreadable images, empty benchmarks, a model that does not load, a
backbone that refuses every sample, a ``--data-root`` without the benchmark's folder."""
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from adamllm.benchmark import Sample
from adamllm.cli import cli
from adamllm.domains.benchmarks import BENCHMARK_CLASSES, LayoutBenchmarkConfig
from adamllm.evaluation import EvalTask, EvaluationError, evaluate
from adamllm.io import DataError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def png(colour=(90, 90, 90), noise=False) -> bytes:
    buffer = io.BytesIO()
    image = Image.effect_noise((64, 64), 60).convert("RGB") if noise else Image.new("RGB", (32, 32), colour)
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_folder(folder: Path, lines, images=None) -> Path:
    """A benchmark folder: ``t.jsonl`` (dicts, or raw text lines) and its images (name -> bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in {"a.png": png(), **(images or {})}.items():
        (folder / name).write_bytes(data)
    (folder / "t.jsonl").write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                                            for line in lines))
    return folder


def task(name, folder, **options):
    return EvalTask(BENCHMARK_CLASSES[name](LayoutBenchmarkConfig(source=str(folder), **options)),
                    BENCHMARK_CLASSES[name].domain)


def lines(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


class Answers:
    """Answers by a keyword of the prompt; logs the prompts it is asked."""

    family = "answers"

    def __init__(self, table, default="no idea"):
        self.table, self.default, self.asked = table, default, []

    def generate(self, conversations, images, settings=None):
        prompts = [c[-1]["content"] for c in conversations]
        self.asked += prompts
        return [next((a for k, a in self.table.items() if k in p), self.default) for p in prompts]


def vqa(id_, question, label, kind, image="a.png"):
    return {"id": id_, "image": image, "input": question, "label": label, "answer_type": kind}


# -- 1. labels the scorer cannot read --------------------------------------------------------
SLAKE_LINES = [
    vqa("a", "Which organ?", "lung", "OPEN"),           # line 1: good, answer "the lung": recall 1
    vqa("b", "Is it enlarged?", ["no"], "CLOSED"),      # line 2: a list label: rejected
    vqa("c", "Is it normal?", "", "CLOSED"),            # line 3: empty CLOSED label (legacy scored it 1): rejected
    vqa("d", "Is it axial?", "yes", "CLOSED"),          # line 4: good, answer "yes": 1
    '{"id": "e", "image": "a.png", "input": ',          # line 5: not JSON: rejected
    vqa("f", "Which side?", "   ", "OPEN"),             # line 6: a blank label: rejected
    vqa("g", "Which modality?", "CT", "OPEN"),          # line 7: good, answer "MRI": 0
    vqa("h", "Is there contrast?", "no", "CLOSED"),     # line 8: good, answer "yes": 0
    vqa("i", "Is it a lesion?", None, "CLOSED"),        # line 9: a null label: rejected
]
ANSWERS = {"organ": "the lung", "axial": "yes", "modality": "MRI", "contrast": "yes", "enlarged": "no",
           "normal": "no"}


def test_unscoreable_labels_are_set_aside_and_the_rest_scored(tmp_path):
    folder = write_folder(tmp_path / "slake", SLAKE_LINES)
    adapter = Answers(ANSWERS)
    report = evaluate(adapter, [task("slake", folder)], tmp_path / "out", model_name="m", progress=False)
    entry = report["benchmarks"]["slake"]
    # open: a 1, g 0 -> 50 ; closed: d 1, h 0 -> 50
    assert entry["scores"] == {"open_recall": 50.0, "closed_accuracy": 50.0}
    assert entry["counts"] == {"open_recall": 2, "closed_accuracy": 2}
    assert (entry["n_samples"], entry["n_errors"], entry["n_rejected"]) == (4, 0, 5)
    assert entry["rejected"] == "slake/rejected.jsonl"
    assert len(adapter.asked) == 4 and not any("enlarged" in p or "normal" in p for p in adapter.asked)
    file = folder / "t.jsonl"
    rejected = lines(tmp_path / "out" / "slake" / "rejected.jsonl")
    assert [(r["where"], r["id"], r["kind"]) for r in rejected] == [
        (f"{file}:2", "b", "bad_label"), (f"{file}:3", "c", "bad_label"), (f"{file}:5", None, "bad_record"),
        (f"{file}:6", "f", "bad_label"), (f"{file}:9", None, "bad_record")]
    assert rejected[0]["reason"] == "label must be a non-empty string, got list ['no']"
    assert rejected[1]["reason"] == "label must be a non-empty string, got ''"
    assert rejected[2]["reason"].startswith("invalid JSON")
    assert rejected[4]["reason"] == "missing field(s) label"
    assert [r["id"] for r in lines(tmp_path / "out" / "slake" / "predictions.jsonl")] == ["a", "d", "g", "h"]


def test_under_error_the_first_bad_label_stops_before_generating(tmp_path):
    folder = write_folder(tmp_path / "slake", SLAKE_LINES)
    adapter = Answers(ANSWERS)
    with pytest.raises(DataError, match=rf"{folder / 't.jsonl'}:2: label must be a non-empty string, got list "
                                        r"\['no'\] \(on_bad_record: error"):
        evaluate(adapter, [task("slake", folder)], tmp_path / "out", model_name="m", on_bad_record="error",
                 progress=False)
    assert adapter.asked == []


@pytest.mark.parametrize("name, label, ok", [
    ("nutrition5k", 5, False),                       # an integer (used to raise TypeError)
    ("nutrition5k", [], False),                      # nothing to recall (used to score 1)
    ("nutrition5k", ",  ,", False),                  # a string without a name
    ("nutrition5k", ["bacon", 3], False),            # a list of not only names
    ("nutrition5k", "bacon, lettuce", True),
    ("foodseg103", [], False),
    ("foodseg103", {"cake": 1}, False),
    ("foodseg103", ["cake"], True),
    ("food101", ["apple pie"], False),               # a list stringified used to be looked up
    ("food101", True, False),
    ("food101", 0, True),                            # an index: apple pie
    ("recipe1m", "", False),
    ("recipe1m", ["Cake", "flour"], False),
    ("pmc_vqa", None, False),
    ("pmc_vqa", ["A"], False),
    ("pmc_vqa", " b ", True),
])
def test_label_types_per_benchmark(tmp_path, name, label, ok):
    options = {"A": "CT", "B": "MRI", "C": "X-ray", "D": "Ultrasound"} if name == "pmc_vqa" else {}
    good_label = {"nutrition5k": ["bacon"], "foodseg103": ["cake"], "food101": "apple pie", "recipe1m": "Cake",
                  "pmc_vqa": "A"}[name]
    folder = write_folder(tmp_path / name, [{"image": "a.png", "input": "q1", "label": good_label, **options},
                                            {"image": "a.png", "input": "q2", "label": label, **options}])
    bench = BENCHMARK_CLASSES[name](LayoutBenchmarkConfig(source=str(folder)))
    if ok:
        assert len(bench.samples()) == 2
        return
    with pytest.raises(DataError, match=rf"t\.jsonl:2: .*label"):
        bench.samples()
    from adamllm.quarantine import Quarantine

    quarantine = Quarantine(tmp_path / "rejected.jsonl")
    assert [s.id for s in bench.samples(quarantine=quarantine)] == ["0"]
    assert quarantine.counts == {"bad_record" if label is None else "bad_label": 1}  # null: a missing field
    assert lines(tmp_path / "rejected.jsonl")[0]["where"] == f"{folder / 't.jsonl'}:2"


# -- adamllm score: a user's file is an error naming its line --------------------------------
@pytest.mark.parametrize("benchmark, record, message", [
    ("slake", {"prediction": None, "label": "yes", "answer_type": "CLOSED"}, "line 2: prediction must be a string, got null"),
    ("slake", {"prediction": 1, "label": "yes", "answer_type": "CLOSED"}, "line 2: prediction must be a string, got int"),
    ("slake", {"prediction": "yes", "label": "", "answer_type": "CLOSED"}, "line 2: label must be a non-empty string, got ''"),
    ("slake", {"prediction": "yes", "label": ["yes"], "answer_type": "CLOSED"},
     "line 2: label must be a non-empty string, got list ['yes']"),
    ("nutrition5k", {"prediction": "bacon", "label": 3},
     "line 2: label must be a non-empty list of names or a string of comma-separated names, got number 3"),
    ("foodseg103", {"prediction": "cake", "label": []}, "line 2: label must be a non-empty list of names"),
    ("food101", {"prediction": "apple pie", "label": None}, "line 2: label is null"),
    ("shapes_vqa", {"prediction": None, "label": "blue"}, "line 2: prediction must be a string, got null"),
    ("shapes_vqa", {"prediction": "blue", "label": ""}, "line 2: label must be a non-empty string, got ''"),
])
def test_score_refuses_a_file_with_an_unscoreable_record(tmp_path, benchmark, record, message):
    good = {"prediction": "yes", "label": "yes", "answer_type": "CLOSED"} if benchmark == "slake" else \
        {"prediction": "x", "label": {"nutrition5k": ["bacon"], "foodseg103": ["cake"], "food101": "apple pie",
                                      "shapes_vqa": "blue"}[benchmark]}
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(record) + "\n")
    result = CliRunner().invoke(cli, ["score", benchmark, str(path)])
    assert result.exit_code == 1, result.output
    assert f"{path}, {message}" in result.output and "Traceback" not in result.output


# -- 2. empty benchmarks -------------------------------------------------------------------------
def test_a_benchmark_without_records_is_an_error_naming_its_source(tmp_path):
    folder = tmp_path / "slake"
    folder.mkdir()
    (folder / "t.jsonl").write_text("\n")
    result = CliRunner().invoke(cli, ["eval", "--backbone", "qwen2_vl", "--model", "never/loaded", "--benchmarks",
                                      "slake", "--source", f"slake={folder}", "--out", str(tmp_path / "out"),
                                      "--quiet"])
    assert result.exit_code == 1, result.output
    assert f"{folder}: no records: benchmark 'slake' has no samples" in result.output
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_benchmark_whose_every_record_is_rejected_is_an_error(tmp_path):
    folder = write_folder(tmp_path / "slake", [vqa("a", "q", "", "OPEN"), vqa("b", "q", ["x"], "CLOSED")])
    with pytest.raises(DataError, match=r"slake: every record was rejected \(2; see .*rejected\.jsonl\)"):
        evaluate(Answers({}), [task("slake", folder)], tmp_path / "out", model_name="m", progress=False)
    assert len(lines(tmp_path / "out" / "slake" / "rejected.jsonl")) == 2
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_plugin_benchmark_without_samples_is_an_error(tmp_path):
    class Empty:
        name, max_new_tokens = "empty_bench", 4

        def samples(self):
            return []

        def get_scorer(self, scorer="legacy", seed=0):
            from adamllm.domains.scoring import get_scorer

            return get_scorer("recipe1m")

    with pytest.raises(EvaluationError, match="benchmark 'empty_bench' has no samples"):
        evaluate(Answers({}), [Empty()], tmp_path, model_name="m", progress=False)


def test_a_plugin_benchmark_sample_its_scorer_cannot_read_is_set_aside(tmp_path):
    class Plugin:
        name, max_new_tokens = "plugin_bench", 4

        def samples(self):
            return [Sample("s1", "Name it.", "Cake"), Sample("s2", "Name it.", ""), Sample("s3", "Name it.", "Pie")]

        def get_scorer(self, scorer="legacy", seed=0):
            from adamllm.domains.scoring import get_scorer

            return get_scorer("recipe1m", "strict")

    report = evaluate(Answers({}, default="Cake"), [Plugin()], tmp_path, model_name="m", progress=False)
    entry = report["benchmarks"]["plugin_bench"]
    # strict ROUGE-L: s1 "cake" vs "cake" 1, s3 "cake" vs "pie" 0 -> 50
    assert (entry["scores"], entry["n_samples"], entry["n_rejected"]) == ({"rouge_l_f": 50.0}, 2, 1)
    [rejected] = lines(tmp_path / "plugin_bench" / "rejected.jsonl")
    assert (rejected["where"], rejected["id"], rejected["kind"]) == ("plugin_bench sample 's2'", "s2", "bad_label")


# -- 3. failed work is not a report of zeros -------------------------------------------------
def test_a_model_that_does_not_exist_is_one_line_and_exit_1(tmp_path):
    result = CliRunner().invoke(cli, ["eval", "--backbone", "qwen2_vl", "--model", "./no/such/dir", "--benchmarks",
                                      "slake", "--source", f"slake={FIXTURES / 'slake'}", "--out",
                                      str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "cannot load model './no/such/dir' with backbone 'qwen2_vl'" in errors[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "report.json").exists()
    assert not (tmp_path / "out" / "slake" / "predictions.jsonl").exists()


def test_another_familys_checkpoint_is_one_line_and_exit_1(tiny_model, tmp_path):
    result = CliRunner().invoke(cli, ["eval", "--backbone", "llava_next", "--model", tiny_model, "--benchmarks",
                                      "slake", "--source", f"slake={FIXTURES / 'slake'}", "--out",
                                      str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1, result.output
    assert "cannot load model" in result.output and "'qwen2_vl' checkpoint, not 'llava_next'" in result.output
    assert not (tmp_path / "out" / "report.json").exists()


def test_every_sample_refused_is_an_error_after_the_predictions_are_written(tmp_path):
    class Refuses:
        family = "refuses"

        def generate(self, conversations, images, settings=None):
            raise ValueError("sample has 5000 tokens, more than max_length=4096")

    with pytest.raises(EvaluationError, match=r"benchmark 'slake': the backbone refused all 4 samples, the first "
                                              r"\('0'\) with ValueError: sample has 5000 tokens"):
        evaluate(Refuses(), [task("slake", FIXTURES / "slake")], tmp_path, batch_size=2, model_name="m",
                 progress=False)
    records = lines(tmp_path / "slake" / "predictions.jsonl")
    assert [r["id"] for r in records] == ["0", "1", "2", "3"] and all("max_length" in r["error"] for r in records)
    assert not (tmp_path / "report.json").exists()


def test_some_samples_refused_still_report(tmp_path):
    class Picky:
        family = "picky"

        def generate(self, conversations, images, settings=None):
            if any("enlarged" in c[-1]["content"] for c in conversations):
                raise ValueError("too long")
            return ["yes"] * len(conversations)

    report = evaluate(Picky(), [task("slake", FIXTURES / "slake")], tmp_path, model_name="m", progress=False)
    assert (report["benchmarks"]["slake"]["n_errors"], report["benchmarks"]["slake"]["n_samples"]) == (1, 4)


# -- 4. images that cannot be read -------------------------------------------------------------
def corrupt_images_folder(tmp_path):
    good, broken = png(noise=True), png(noise=True)
    return write_folder(tmp_path / "slake", [
        vqa("a", "Which organ?", "lung", "OPEN"),                               # line 1: good
        vqa("b", "Is it enlarged?", "no", "CLOSED", image="truncated.png"),    # line 2: truncated
        vqa("c", "Is it axial?", "yes", "CLOSED", image="good.png"),           # line 3: good
        vqa("d", "Which modality?", "CT", "OPEN", image="empty.png"),          # line 4: zero bytes
        vqa("e", "Is there contrast?", "no", "CLOSED", image="garbage.png"),   # line 5: not an image
    ], images={"good.png": good, "truncated.png": broken[:len(broken) // 2], "empty.png": b"",
               "garbage.png": b"GIF89a but not really"})


def test_unreadable_images_are_set_aside_and_the_rest_scored(tmp_path):
    folder = corrupt_images_folder(tmp_path)
    adapter = Answers({"organ": "the lung", "axial": "no"})
    out = tmp_path / "out"
    report = evaluate(adapter, [task("slake", folder)], out, batch_size=2, model_name="m", progress=False)
    entry = report["benchmarks"]["slake"]
    # a: open recall 1 ; c: closed "no" vs "yes" 0
    assert entry["scores"] == {"open_recall": 100.0, "closed_accuracy": 0.0}
    assert (entry["n_samples"], entry["n_errors"], entry["n_rejected"]) == (2, 0, 3)
    file = folder / "t.jsonl"
    rejected = lines(out / "slake" / "rejected.jsonl")
    assert [(r["where"], r["id"], r["kind"]) for r in rejected] == [
        (f"{file}:2", "b", "bad_image"), (f"{file}:4", "d", "bad_image"), (f"{file}:5", "e", "bad_image")]
    assert rejected[0]["reason"] == f"unreadable image: {folder / 'truncated.png'}: truncated image file"
    assert rejected[1]["reason"] == f"unreadable image: {folder / 'empty.png'}: empty file (0 bytes)"
    assert [r["id"] for r in lines(out / "slake" / "predictions.jsonl")] == ["a", "c"]
    assert len(adapter.asked) == 2

    # a rerun generates nothing again and tries the set-aside samples again: the same 3, not 6
    again = Answers({})
    report = evaluate(again, [task("slake", folder)], out, batch_size=2, model_name="m", progress=False)
    assert again.asked == [] and report["benchmarks"]["slake"] == entry
    assert len(lines(out / "slake" / "rejected.jsonl")) == 3

    # the image is fixed: the sample is generated and scored, and no longer counted as rejected
    (folder / "truncated.png").write_bytes(png())
    fixed = Answers({"enlarged": "no"})
    report = evaluate(fixed, [task("slake", folder)], out, batch_size=2, model_name="m", progress=False)
    assert len(fixed.asked) == 1
    assert report["benchmarks"]["slake"]["n_rejected"] == 2 and report["benchmarks"]["slake"]["n_samples"] == 3
    assert report["benchmarks"]["slake"]["scores"]["closed_accuracy"] == 50.0  # b 1, c 0


def test_under_error_an_unreadable_image_stops_naming_the_record(tmp_path):
    folder = corrupt_images_folder(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=rf"{folder / 't.jsonl'}:2: unreadable image: .*truncated\.png: "
                                        r"truncated image file \(on_bad_record: error"):
        evaluate(Answers({}), [task("slake", folder)], out, batch_size=1, model_name="m", on_bad_record="error",
                 progress=False)
    assert [r["id"] for r in lines(out / "slake" / "predictions.jsonl")] == ["a"]  # finished work is kept


def test_embedded_image_bytes_that_cannot_be_read_name_the_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    options = {"A": "CT", "B": "MRI", "C": "X-ray", "D": "Ultrasound"}
    rows = [{"image": {"bytes": png(), "path": None}, "input": "Modality?", "label": "A", **options},
            {"image": {"bytes": png(noise=True)[:300], "path": None}, "input": "Modality?", "label": "B", **options}]
    folder = tmp_path / "pmc"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), folder / "test.parquet")
    report = evaluate(Answers({}, default="(A)"), [task("pmc_vqa", folder)], tmp_path / "out", model_name="m",
                      progress=False)
    assert report["benchmarks"]["pmc_vqa"]["scores"] == {"accuracy": 100.0}
    [rejected] = lines(tmp_path / "out" / "pmc_vqa" / "rejected.jsonl")
    assert rejected == {"where": f"{folder / 'test.parquet'} row 1", "id": "1", "kind": "bad_image",
                        "reason": "unreadable image: image bytes: truncated image file"}


def test_every_image_unreadable_is_an_error(tmp_path):
    folder = write_folder(tmp_path / "slake", [vqa("a", "q", "x", "OPEN", image="e.png")], images={"e.png": b""})
    with pytest.raises(EvaluationError, match=r"benchmark 'slake' \(source .*\): every sample was rejected \(1; "):
        evaluate(Answers({}), [task("slake", folder)], tmp_path / "out", model_name="m", progress=False)


def test_eval_cli_sets_aside_and_warns(tiny_model, tmp_path):
    folder = corrupt_images_folder(tmp_path)
    args = ["eval", "--backbone", "qwen2_vl", "--model", tiny_model, "--benchmarks", "slake", "--source",
            f"slake={folder}", "--out", str(tmp_path / "out"), "--quiet", "--max-new-tokens", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (report["benchmarks"]["slake"]["n_samples"], report["benchmarks"]["slake"]["n_rejected"]) == (2, 3)
    assert "warning: slake: 3 bad records set aside, not scored" in result.output
    failed = CliRunner().invoke(cli, [*args, "--force", "--on-bad-record", "error"])
    assert failed.exit_code == 1
    assert f"{folder / 't.jsonl'}:2: unreadable image:" in failed.output and "Traceback" not in failed.output


# -- 5. --data-root without the benchmark's folder -----------------------------------------
def test_data_root_without_the_benchmarks_folder_is_an_error(tmp_path):
    (tmp_path / "root" / "slake").mkdir(parents=True)
    result = CliRunner().invoke(cli, ["eval", "--backbone", "qwen2_vl", "--model", "unused", "--benchmarks",
                                      "slake,vqa_rad", "--data-root", str(tmp_path / "root"), "--out",
                                      str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"no folder {tmp_path / 'root' / 'vqa_rad'} for benchmark 'vqa_rad'" in result.output
    # a benchmark given its own --source does not need one
    result = CliRunner().invoke(cli, ["eval", "--backbone", "qwen2_vl", "--model", "unused", "--benchmarks",
                                      "vqa_rad", "--data-root", str(tmp_path / "root"), "--source",
                                      f"vqa_rad={tmp_path / 'root' / 'slake'}", "--out", str(tmp_path / "out")])
    assert "no folder" not in result.output and "no *.jsonl or *.parquet files" in result.output


def test_the_stage_follows_the_run_configs_policy(tiny_model, tmp_path):
    import yaml

    folder = corrupt_images_folder(tmp_path / "data")
    for policy, code in (("skip", 0), ("error", 1)):
        config = {"output_dir": f"out_{policy}", "stages": ["evaluate"], "on_bad_record": policy,
                  "backbone": {"type": "qwen2_vl", "model": tiny_model},
                  "benchmarks": [{"type": "slake", "source": str(folder), "max_new_tokens": 2}]}
        path = tmp_path / f"{policy}.yaml"
        path.write_text(yaml.safe_dump(config))
        result = CliRunner().invoke(cli, ["run", str(path)])
        assert result.exit_code == code, result.output
    report = json.loads((tmp_path / "out_skip" / "evaluate" / "report.json").read_text())
    assert report["benchmarks"]["slake"]["n_rejected"] == 3
    assert len(lines(tmp_path / "out_skip" / "evaluate" / "slake" / "rejected.jsonl")) == 3
    assert f"{folder / 't.jsonl'}:2: unreadable image" in result.output


# -- data parallel: each process sets aside its own share's bad images, the main one merges -------
class ImageQuestions:
    name, max_new_tokens, domain = "image_questions", 4, None

    def samples(self):
        good = png()
        return [Sample(str(i), f"question {i}", "yes", image=b"" if i in (2, 5) else good,
                       fields={"answer_type": "CLOSED"}) for i in range(7)]

    def get_scorer(self, scorer="legacy", seed=0):
        from adamllm.domains.scoring import get_scorer

        return get_scorer("slake", scorer, seed)


def _parallel_worker(out_dir: str) -> None:
    from accelerate import PartialState

    PartialState._reset_state()
    evaluate(Answers({}, default="yes"), [ImageQuestions()], out_dir, batch_size=2, model_name="fake",
             progress=False)


def test_two_processes_merge_their_rejected_samples(tmp_path):
    from accelerate import PartialState, debug_launcher

    debug_launcher(_parallel_worker, args=(str(tmp_path),), num_processes=2)
    PartialState._reset_state()
    bench_dir = tmp_path / "image_questions"
    rejected = lines(bench_dir / "rejected.jsonl")
    assert sorted(r["id"] for r in rejected) == ["2", "5"] and {r["kind"] for r in rejected} == {"bad_image"}
    assert rejected[0]["where"] == "image_questions sample '2'"
    assert rejected[0]["reason"] == "unreadable image: image bytes: empty file (0 bytes)"
    assert not list(bench_dir.glob("rejected.rank*.jsonl")) and not list(bench_dir.glob("predictions.rank*"))
    assert [r["id"] for r in lines(bench_dir / "predictions.jsonl")] == ["0", "1", "3", "4", "6"]
    entry = json.loads((tmp_path / "report.json").read_text())["benchmarks"]["image_questions"]
    assert (entry["n_samples"], entry["n_rejected"], entry["scores"]) == (5, 2, {"closed_accuracy": 100.0})
