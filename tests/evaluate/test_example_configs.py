"""The bundled configs run end to end: the example domain's evaluate stage, the generic `vqa`."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_example_domain_config_evaluates_a_tiny_backbone(tmp_path):
    example = tmp_path / "examples" / "adamllm-example-domain"
    shutil.copytree(ROOT / "examples" / "adamllm-example-domain", example,
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    result = run_cli("run", str(example / "example.yaml"))
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "runs" / "shapes" / "evaluate" / "report.json").read_text())
    text = json.dumps(report)
    assert "shapes_vqa" in text and "exact-1" in text  # the plugin's own scorer, named in the report
    assert (tmp_path / "runs" / "shapes" / "evaluate" / "report.png").exists()


def test_generic_vqa_benchmark_needs_a_source_and_scores_like_vqa_rad(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_dir: o\nbenchmarks: [{type: vqa}]\n")
    result = run_cli("config", "validate", str(bad))
    assert result.returncode == 1 and "benchmarks.0.source: Field required" in result.stderr
    from adamllm.domains.benchmarks import CustomVQABenchmark, CustomVQAConfig

    bench = CustomVQABenchmark(CustomVQAConfig(source=str(ROOT / "examples" / "quickstart" / "benchmark")))
    samples = bench.samples()
    assert len(samples) == 12 and {s.fields["answer_type"] for s in samples} == {"OPEN", "CLOSED"}
    judge = bench.get_scorer()
    closed = next(s for s in samples if s.fields["answer_type"] == "CLOSED")
    assert judge.score_sample(closed.record(f"{closed.label}, it is")).value == 1.0
    assert judge.version == "legacy-1"
