"""Issue 21, cases 12-15: errors say what happened, in one line, through the real command line.

12: deeply nested YAML (file or ``KEY=VALUE`` override) names the file or the override and the line,
never a RecursionError; 13: a config that is not UTF-8 names the file and line; 14: an exception in
a third-party plugin's component (constructor or method), or a component that is ``None`` or returns
``None``, names the plugin, its distribution and the component (``-v`` adds the traceback); 15: a
plugin that prints never corrupts ``--json`` output. The plugin is installed as pip leaves it (a
dist-info folder with an entry point on ``PYTHONPATH``) and found by ``adamllm`` in a subprocess.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adamllm.testing.data import write_pairs
from adamllm.testing.distributions import fake_distribution

NOISY = '''
print("noisy: imported")

from adamllm import hookimpl
from adamllm.benchmark import SampleScore, mean_by_metric
from adamllm.specs import BenchmarkSpec, SynthesizerSpec


class BoomInit:
    def __init__(self):
        raise RuntimeError("cannot start the boom engine")


class BoomCall:
    def synthesize(self, pairs, ctx):
        print("noisy: synthesizing")
        raise KeyError("caption_field")


def make_none():
    return None


class NoneResult:
    def synthesize(self, pairs, ctx):
        return None


class NoisyScorer:
    benchmark, scorer, version, metrics = "noisy_bench", "exact", "1", ("accuracy",)

    def score_sample(self, record, index):
        print("noisy: scoring", index)
        return SampleScore("accuracy", float(record["prediction"] == record["label"]))

    def aggregate(self, scores):
        return mean_by_metric(scores, self.metrics)


class NoisyBench:
    name, max_new_tokens, prediction_fields = "noisy_bench", 4, ("prediction", "label")

    def samples(self):
        return []

    def get_scorer(self, scorer=None, seed=0):
        print("noisy: building the scorer")
        return NoisyScorer()


@hookimpl
def adamllm_synthesizers():
    print("noisy: registering synthesizers")
    return [SynthesizerSpec(name="boom_init", factory="noisy_plugin:BoomInit"),
            SynthesizerSpec(name="boom_call", factory="noisy_plugin:BoomCall"),
            SynthesizerSpec(name="none_factory", factory="noisy_plugin:make_none"),
            SynthesizerSpec(name="none_result", factory="noisy_plugin:NoneResult")]


@hookimpl
def adamllm_benchmarks():
    return [BenchmarkSpec(name="noisy_bench", factory="noisy_plugin:NoisyBench")]
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    fake_distribution(site, "adamllm-noisy", version="0.3", modules={"noisy_plugin": NOISY},
                      entry_points={"noisy": "noisy_plugin"})
    return site


def adamllm(*args, site=None, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAMLLM_")}
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def error_line(result) -> str:
    """The command's error: it failed with exit code 1 and printed exactly one ``Error:`` line."""
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    return errors[0]


# -- 12: deep nesting ---------------------------------------------------------------------------
def test_deeply_nested_config_names_the_file_and_line(tmp_path):
    config = tmp_path / "deep.yaml"
    config.write_text("output_dir: out\nstages: [synthesize]\nseed: " + "[" * 20000 + "]" * 20000 + "\n")
    result = adamllm("config", "validate", str(config))
    assert error_line(result) == f"Error: {config}: invalid run config:"
    assert "line 3: nested more than 64 levels deep" in result.stderr
    assert "RecursionError" not in result.stderr


def test_deeply_nested_block_mapping_is_refused_at_its_line(tmp_path):
    config = tmp_path / "deep.yaml"
    config.write_text("output_dir: out\n" + "".join(f"{'  ' * i}k{i}:\n" for i in range(200)) + "  " * 200 + "x: 1\n")
    result = adamllm("run", str(config))
    error_line(result)
    assert "(yaml): line 66: nested more than 64 levels deep" in result.stderr


def test_deeply_nested_override_names_the_override(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: out\nstages: [synthesize]\n")
    deep = adamllm("run", str(config), "synthesizer.options=" + "[" * 20000 + "]" * 20000)
    assert error_line(deep) == "Error: command line: invalid run config:"
    assert "synthesizer.options: value is not valid YAML: line 1: nested more than 64 levels deep" in deep.stderr
    long_key = adamllm("run", str(config), "a." * 5000 + "b=1")
    error_line(long_key)
    assert "more than 64 levels deep" in long_key.stderr and "RecursionError" not in long_key.stderr
    assert not (tmp_path / "out").exists()


def test_nesting_under_the_limit_still_loads(tmp_path):
    from adamllm.config import MAX_DEPTH, load_yaml

    config = tmp_path / "ok.yaml"
    config.write_text("output_dir: out\nx: " + "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1) + "\n")
    value = load_yaml(config)["x"]
    for _ in range(MAX_DEPTH - 2):
        value = value[0]
    assert value == [1]


# -- 13: not UTF-8 ------------------------------------------------------------------------------
def test_config_that_is_not_utf8_names_file_line_and_column(tmp_path):
    config = tmp_path / "latin1.yaml"
    config.write_bytes("output_dir: out\nstages: [synthesize]\n# café au lait\nseed: 1\n".encode("latin-1"))
    for args in (("config", "validate", str(config)), ("run", str(config))):
        result = adamllm(*args)
        assert error_line(result) == f"Error: {config}: invalid run config:"
        assert "line 3: not UTF-8 text (byte 0xe9 at column 6); save the file as UTF-8" in result.stderr
        assert "codec" not in result.stderr


# -- 14: a plugin's component raises, or is None ------------------------------------------------
def _synthesize_config(tmp_path: Path, synthesizer: str) -> Path:
    write_pairs(tmp_path / "pairs", n=2)
    config = tmp_path / f"{synthesizer}.yaml"
    config.write_text(textwrap.dedent(f"""\
        output_dir: out_{synthesizer}
        stages: [synthesize]
        data: {{synthesize: pairs/image_caption_pairs.json}}
        synthesizer: {{type: {synthesizer}}}
        """))
    return config


@pytest.mark.parametrize("synthesizer, detail", [
    ("boom_init", " failed: RuntimeError: cannot start the boom engine (a bug in the plugin: -v shows the "
                  "traceback; report it to its authors, or skip the plugin with ADAMLLM_DISABLE_PLUGINS=noisy)"),
    ("boom_call", " failed: KeyError: 'caption_field' (a bug in the plugin: -v shows the traceback; report it to "
                  "its authors, or skip the plugin with ADAMLLM_DISABLE_PLUGINS=noisy)"),
    ("none_factory", ": its factory noisy_plugin:make_none returned None instead of the component"),
    ("none_result", ": NoneResult.synthesize returned NoneType; it must return a list (one result per record, "
                    "in order)"),
])
def test_plugin_component_error_names_plugin_and_component(site, tmp_path, synthesizer, detail):
    config = _synthesize_config(tmp_path, synthesizer)
    result = adamllm("run", str(config), site=site)
    assert error_line(result) == f"Error: plugin 'noisy' (adamllm-noisy 0.3), synthesizer {synthesizer!r}{detail}"


def test_plugin_component_error_traceback_with_v(site, tmp_path):
    config = _synthesize_config(tmp_path, "boom_call")
    result = adamllm("-v", "run", str(config), site=site)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and 'noisy_plugin.py", line' in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == (
        "Error: plugin 'noisy' (adamllm-noisy 0.3), synthesizer 'boom_call' failed: KeyError: 'caption_field' "
        "(a bug in the plugin: report it to its authors, or skip the plugin with ADAMLLM_DISABLE_PLUGINS=noisy)")


def test_errors_outside_plugins_are_unchanged(site, tmp_path):
    """adamllm's own error (a missing pairs file) keeps its message though the plugin is installed."""
    config = _synthesize_config(tmp_path, "boom_call")
    (tmp_path / "pairs" / "image_caption_pairs.json").unlink()
    result = adamllm("run", str(config), site=site)
    line = error_line(result)
    assert line.startswith(f"Error: {config}: invalid run config:") and "image_caption_pairs.json" in result.stderr


def test_blame_in_process(plugin_manager, register_plugin):
    """The plugin manager finds the plugin and component from the traceback (the component built by its spec)."""
    from adamllm import hookimpl
    from adamllm.specs import SynthesizerSpec

    class Broken:
        def synthesize(self, pairs, ctx):
            return {}["missing"]

    class Plugin:
        @hookimpl
        def adamllm_synthesizers(self):
            return [SynthesizerSpec(name="broken", factory=Broken)]

    register_plugin(Plugin(), name="inproc", distribution="adamllm-inproc")
    component = plugin_manager.spec("synthesizer", "broken").build()
    with pytest.raises(KeyError) as raised:
        component.synthesize([], None)
    info, registered = plugin_manager.blame(raised.value)
    assert (info.name, info.distribution, registered.spec.name) == ("inproc", "adamllm-inproc", "broken")


# -- 15: a plugin's print never corrupts --json ------------------------------------------------
def test_plugin_print_does_not_corrupt_json_lists(site):
    listed = adamllm("plugins", "list", "--json", site=site)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["noisy"]["components"]["synthesizer"] == ["boom_init", "boom_call", "none_factory", "none_result"]
    assert "noisy: imported" in listed.stderr and "noisy: registering synthesizers" in listed.stderr
    components = adamllm("components", "list", "--kind", "synthesizer", "--json", site=site)
    assert components.returncode == 0, components.stderr
    assert "boom_call" in {row["name"] for row in json.loads(components.stdout)}
    assert "noisy:" not in components.stdout


def test_plugin_print_does_not_corrupt_score_json(site, tmp_path):
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text('{"prediction": "a", "label": "a"}\n{"prediction": "b", "label": "c"}\n')
    result = adamllm("score", "noisy_bench", str(predictions), "--json", site=site)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["scores"] == {"accuracy": 50.0}
    assert "noisy: scoring 1" in result.stderr and "noisy: building the scorer" in result.stderr
    plain = adamllm("score", "noisy_bench", str(predictions), site=site)  # without --json, prints stay on stdout
    assert "noisy: scoring 1" in plain.stdout and "accuracy" in plain.stdout


def test_plugin_print_does_not_corrupt_inspect_json(site, tmp_path):
    config = _synthesize_config(tmp_path, "boom_call")
    run_dir = tmp_path / "out_boom_call"
    (run_dir / "synthesize").mkdir(parents=True)
    image = tmp_path / "pairs" / "images" / "pair0.png"
    (run_dir / "synthesize" / "triplets.jsonl").write_text(json.dumps(
        {"id": "p0", "image": str(image), "instruction": "What colour?", "precise": "red",
         "informative": "It is red.", "raw": "r"}) + "\n")
    result = adamllm("inspect", str(run_dir), "--config", str(config), "--json", "--no-overlap", site=site)
    assert result.returncode == 0, result.stderr
    numbers = json.loads(result.stdout)
    assert "overlap" in numbers and "noisy: imported" in result.stderr


def test_json_stdout_in_process_sends_prints_to_stderr(capsys):
    """Under a replaced sys.stdout (pytest's capture here) the redirection is done at the Python level."""
    from adamllm.cli import json_stdout

    with json_stdout() as emit:
        print("chatter")
        emit('{"a": 1}')
    captured = capsys.readouterr()
    assert captured.out == '{"a": 1}\n' and captured.err == "chatter\n"


def test_the_ray_executor_without_ray_names_the_extra_to_install(tmp_path):
    try:  # this environment has no Ray (the Ray lane has, and tests the executor itself)
        import ray  # noqa: F401
        pytest.skip("Ray is installed here; the Ray lane tests the executor itself")
    except ImportError:
        pass
    config = tmp_path / "run.yaml"
    write_pairs(tmp_path / "pairs")
    config.write_text("output_dir: out\nstages: [synthesize]\ndata: {synthesize: pairs/image_caption_pairs.json}\n"
                      "synthesizer: {type: rules}\n")
    result = adamllm("run", str(config), "--executor", "ray", cwd=tmp_path)
    assert error_line(result) == ("Error: --executor ray needs Ray, which is not installed: "
                                  "pip install 'adamllm[ray]' (Ray >= 2.40 with Ray Data)")
    assert not (tmp_path / "out").exists()
    preview = adamllm("run", str(config), "--executor", "ray", "--preview", "2", cwd=tmp_path)
    assert preview.returncode == 2 and "a preview runs in this process" in preview.stderr
