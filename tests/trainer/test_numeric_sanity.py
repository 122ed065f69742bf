"""Numeric sanity (issue 21, case 5): hyper-parameters must be finite and in range, and a run
whose loss turns NaN stops at that step with one line, exits non-zero and saves no model."""
import json
import math
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from adamllm.testing.data import write_mix


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from adamllm.backbones.tiny import build_tiny

    return build_tiny("qwen2_vl", tmp_path_factory.mktemp("tiny") / "qwen", size="tiny", seed=0)


def write_config(folder, model, trainer="batch_size: 4, max_steps: 3, learning_rate: 0.003, save_every: 1"):
    """A train-only run; ``model: base`` is a tiny checkpoint built on first use (never, when refused)."""
    write_mix(folder / "data", n=8)
    config = folder / "run.yaml"
    backbone = "model: base, tiny: tiny" if model == "base" else f"model: {model}"
    config.write_text(f"output_dir: out\nseed: 1\nstages: [train]\n"
                      f"backbone: {{type: qwen2_vl, {backbone}}}\n"
                      f"trainer: {{type: sft, {trainer}}}\ndata: {{train: data/mix.jsonl}}\n")
    return config


@pytest.mark.parametrize("override, field", [
    ("trainer.learning_rate=1e309", "trainer.learning_rate"),
    ("trainer.learning_rate=.inf", "trainer.learning_rate"),
    ("trainer.max_grad_norm=.inf", "trainer.max_grad_norm"),
    ("trainer.num_epochs=1e309", "trainer.num_epochs"),
    ("trainer.group_learning_rates.vision=.nan", "trainer.group_learning_rates.vision"),
    ("trainer.learning_rate=5", "trainer.learning_rate"),
    ("trainer.weight_decay=-0.1", "trainer.weight_decay"),
])
def test_non_finite_or_out_of_range_hyper_parameters_are_refused_before_anything_runs(tmp_path, override, field):
    config = write_config(tmp_path, "base")
    result = run_cli("run", str(config), override)
    assert result.returncode == 1, result.stdout
    header, *problems = result.stderr.strip().splitlines()
    assert header == f"Error: {config}: invalid run config:", result.stderr
    assert len(problems) == 1 and problems[0].strip().startswith(f"{field}: Input should be"), result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "base").exists()


def test_an_infinite_learning_rate_in_the_file_is_refused_naming_the_field(tmp_path):
    config = write_config(tmp_path, "base", trainer="learning_rate: .inf")
    result = run_cli("config", "validate", str(config))
    assert result.returncode == 1
    assert "trainer.learning_rate" in result.stderr and "finite" in result.stderr


def test_a_nan_loss_stops_at_that_step_and_saves_no_model(tmp_path, tiny_checkpoint):
    """A base checkpoint with one NaN weight (a corrupt download, an earlier diverged run): the
    first step's loss is NaN, so training stops there, naming the step, before any update."""
    import shutil

    poisoned = tmp_path / "poisoned"
    shutil.copytree(tiny_checkpoint, poisoned)
    weights = load_file(str(poisoned / "model.safetensors"))
    weights["model.norm.weight"][0] = float("nan")
    save_file(weights, str(poisoned / "model.safetensors"), metadata={"format": "pt"})
    config = write_config(tmp_path, poisoned)
    result = run_cli("run", str(config))
    assert result.returncode == 1, result.stdout[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: training stopped at step 1 (epoch 1): the loss is nan"), result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    train = tmp_path / "out" / "train"
    assert not (train / "model").exists() and not (train / "_done.json").exists()
    assert not (train / "checkpoints").exists() or not any((train / "checkpoints").iterdir())
    # a rerun fails the same way: it never reports the stage as done
    again = run_cli("run", str(config))
    assert again.returncode == 1 and "already done" not in again.stdout


def test_a_healthy_run_saves_finite_weights_and_a_finite_loss_log(tmp_path, tiny_checkpoint):
    config = write_config(tmp_path, tiny_checkpoint)
    result = run_cli("run", str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    train = tmp_path / "out" / "train"
    losses = [json.loads(line)["loss"] for line in (train / "loss.jsonl").read_text().splitlines()]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    saved = load_file(str(train / "model" / "model.safetensors"))
    assert all(bool(torch.isfinite(t).all()) for t in saved.values())


def test_weights_are_checked_before_any_write():
    """The last guard before a checkpoint or the model is written: a NaN or infinite trainable
    weight is named; a frozen one (not written by a checkpoint) is not the trainer's to judge."""
    from adamllm.plugins.sft.numeric import NonFiniteError, check_grad_norm, check_weights

    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1))
    check_weights(model, "checkpoint step-1")
    with torch.no_grad():
        model[1].weight[0, 2] = float("inf")
    with pytest.raises(NonFiniteError, match=r"^not writing checkpoint step-1: weight 1\.weight holds NaN"):
        check_weights(model, "checkpoint step-1")
    model[1].weight.requires_grad_(False)
    check_weights(model, "checkpoint step-1")
    with pytest.raises(NonFiniteError, match=r"step 4 \(epoch 2\): the gradient norm is inf"):
        check_grad_norm(torch.tensor(float("inf")), "step 4 (epoch 2)")


BENCHMARKS = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


class _Shaky:
    """Answers every question; its answer to 'Is it enlarged?' (sample '1' of the fixture) is
    'undefined', which the scorer below cannot score."""

    family = "shaky"

    def generate(self, conversations, images, settings=None):
        return ["undefined" if "enlarged" in c[-1]["content"] else "yes" for c in conversations]


def _nan_scoring_slake(nan_on):
    """The real slake benchmark, its real scorer, except that a record for which ``nan_on(record)``
    holds scores NaN (as a plugin scorer dividing by zero would)."""
    from adamllm.benchmark import SampleScore
    from adamllm.domains.benchmarks import BENCHMARK_CLASSES, LayoutBenchmarkConfig
    from adamllm.evaluation import EvalTask

    base = BENCHMARK_CLASSES["slake"]

    class NanSlake(base):
        def get_scorer(self, scorer=None, seed=0):
            real = super().get_scorer(scorer, seed) if scorer else super().get_scorer(seed=seed)

            class Scorer:
                benchmark, scorer, version, metrics = real.benchmark, real.scorer, real.version, real.metrics

                def score_sample(self, record, index=0):
                    score = real.score_sample(record, index)
                    return SampleScore(score.metric, math.nan) if nan_on(record) else score

                aggregate = staticmethod(real.aggregate)

            return Scorer()

    return EvalTask(NanSlake(LayoutBenchmarkConfig(source=str(BENCHMARKS / "slake"))), base.domain)


def test_a_nan_score_is_never_saved_as_a_result(tmp_path):
    from adamllm.benchmark import ScoreError
    from adamllm.evaluation import evaluate

    with pytest.raises(ScoreError, match=r"^benchmark 'slake', scorer 'legacy': sample '1' was scored "
                                         r"SampleScore\(metric='closed_accuracy', value=nan\); a score must be a finite"):
        evaluate(_Shaky(), [_nan_scoring_slake(lambda r: r["prediction"] == "undefined")], tmp_path, model_name="m", progress=False)
    assert not (tmp_path / "report.json").exists()
    saved = (tmp_path / "slake" / "predictions.jsonl").read_text() if (tmp_path / "slake").exists() else ""
    assert "NaN" not in saved


def test_a_sample_the_scorer_cannot_score_is_set_aside_before_generation(tmp_path):
    """Checked with an empty answer before anything is generated: a NaN there is a bad label."""
    from adamllm.evaluation import evaluate

    unscorable = _nan_scoring_slake(lambda r: r["id"] == "2" and r["prediction"] == "")
    report = evaluate(_Shaky(), [unscorable], tmp_path, model_name="m", progress=False, on_bad_record="skip")
    result = report["benchmarks"]["slake"]
    assert result["n_samples"] == 3 and result["n_rejected"] == 1
    assert result["scores"] and all(math.isfinite(v) for v in result["scores"].values())
    [entry] = [json.loads(line) for line in (tmp_path / "slake" / "rejected.jsonl").read_text().splitlines()]
    assert entry["kind"] == "bad_label" and entry["id"] == "2" and "value=nan" in entry["reason"]
