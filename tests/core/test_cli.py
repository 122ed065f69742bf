"""The command line, run in subprocesses exactly as a user runs it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adamllm.testing.distributions import fake_distribution

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = ROOT / "examples" / "adamllm-example-domain" / "example.yaml"


def adamllm(*args, env=None, pythonpath=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ADAMLLM_")}
    environ.update(env or {})
    if pythonpath:
        environ["PYTHONPATH"] = os.pathsep.join([str(pythonpath), environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          env=environ, timeout=120)


@pytest.fixture
def broken_site(tmp_path):
    fake_distribution(tmp_path, "adamllm-broken", version="0.0.1",
                      modules={"broken_plugin": "import not_a_real_module_xyz\n"},
                      entry_points={"adamllm-broken": "broken_plugin"})
    return tmp_path


def test_plugins_list_json_shows_builtins_and_example_domain():
    result = adamllm("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    builtins = [r for r in rows.values() if r["builtin"]]
    assert builtins and all(r["status"] == "active" for r in builtins)
    assert "adamllm-example-domain" in rows, "install examples/adamllm-example-domain (see README)"
    example = rows["adamllm-example-domain"]
    assert example["status"] == "active" and example["version"] == "0.1.0"
    assert example["components"] == {"domain": ["shapes"], "benchmark": ["shapes_vqa"]}


def test_broken_plugin_warns_once_and_is_listed_as_failed(broken_site):
    result = adamllm("plugins", "list", "--json", pythonpath=broken_site)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "adamllm-broken" in warnings[0] and "not_a_real_module_xyz" in warnings[0]
    row = next(r for r in json.loads(result.stdout) if r["name"] == "adamllm-broken")
    assert row["status"] == "failed" and row["error"].startswith("ModuleNotFoundError")


def test_broken_plugin_strict_mode_fails_naming_it(broken_site):
    for args, env in [(("plugins", "list"), {"ADAMLLM_STRICT_PLUGINS": "1"}),
                      (("--strict-plugins", "plugins", "list"), {})]:
        result = adamllm(*args, env=env, pythonpath=broken_site)
        assert result.returncode != 0
        assert "adamllm-broken" in result.stderr


def test_broken_plugin_disabled_is_silent(broken_site):
    result = adamllm("plugins", "list", "--json", env={"ADAMLLM_DISABLE_PLUGINS": "adamllm-broken"},
                     pythonpath=broken_site)
    assert result.returncode == 0 and "warning" not in result.stderr
    row = next(r for r in json.loads(result.stdout) if r["name"] == "adamllm-broken")
    assert row["status"] == "disabled"
    result = adamllm("--no-plugins", "plugins", "list", pythonpath=broken_site)
    assert result.returncode == 0 and "warning" not in result.stderr


def test_duplicate_component_error_names_both_distributions(tmp_path):
    source = ("from adamllm import hookimpl\nfrom adamllm.specs import DomainSpec\n"
              "@hookimpl\ndef adamllm_domains():\n    return [DomainSpec(name='clash')]\n")
    fake_distribution(tmp_path, "adamllm-first", modules={"first_plugin": source},
                      entry_points={"adamllm-first": "first_plugin"})
    fake_distribution(tmp_path, "adamllm-second", modules={"second_plugin": source},
                      entry_points={"adamllm-second": "second_plugin"})
    result = adamllm("components", "list", pythonpath=tmp_path)
    assert result.returncode == 0, result.stderr  # the later plugin gives way, the CLI goes on
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert "adamllm-first" in warning and "adamllm-second" in warning and "clash" in warning
    strict = adamllm("--strict-plugins", "components", "list", pythonpath=tmp_path)
    assert strict.returncode == 1
    assert "adamllm-first" in strict.stderr and "adamllm-second" in strict.stderr and "clash" in strict.stderr


def test_plugins_list_imports_no_torch_or_transformers():
    code = ("import sys\nfrom adamllm.cli import main\n"
            "try:\n    main(['plugins', 'list', '--json'])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('torch', 'transformers', 'peft', 'accelerate', 'datasets') if m in sys.modules)\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in result.stderr, result.stderr


def test_version_lists_plugins_with_versions():
    result = adamllm("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("adamllm 0.1.0")
    assert "adamllm-example-domain (adamllm-example-domain 0.1.0)" in result.stdout


def test_components_list_kind_json():
    result = adamllm("components", "list", "--kind", "domain", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["shapes"]["provider"] == "adamllm-example-domain 0.1.0"
    assert rows["shapes"]["benchmarks"] == ["shapes_vqa"] and rows["shapes"]["sources"] == ["captions"]


def test_config_validate_ok_and_errors(tmp_path):
    ok = adamllm("config", "validate", str(EXAMPLE_CONFIG))
    assert ok.returncode == 0 and "valid" in ok.stdout, ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_dir: o\nbenchmarks: [{type: shapes_vqa, limit: many}, {type: nope}]\nfoo: 1\n")
    result = adamllm("config", "validate", str(bad))
    assert result.returncode != 0
    assert "benchmarks.0.limit" in result.stderr and "benchmarks.1.type: unknown benchmark 'nope'" in result.stderr
    assert "foo: Extra inputs are not permitted" in result.stderr


def test_config_schema_is_json_schema():
    result = adamllm("config", "schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    assert jsonschema.Draft202012Validator(schema).is_valid(
        {"output_dir": "o", "benchmarks": [{"type": "shapes_vqa", "limit": 2}]})


def test_plugin_can_add_a_command(tmp_path):
    source = ("import click\nfrom adamllm import hookimpl\n"
              "@hookimpl\ndef adamllm_register_commands(cli):\n"
              "    @cli.command()\n    @click.argument('who')\n    def greet(who):\n        click.echo(f'hello {who}')\n")
    fake_distribution(tmp_path, "adamllm-greet", modules={"greet_plugin": source},
                      entry_points={"adamllm-greet": "greet_plugin"})
    result = adamllm("greet", "world", pythonpath=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "hello world", result.stderr
    assert "greet" in adamllm("--help", pythonpath=tmp_path).stdout


def test_unknown_command_and_run_missing_config(tmp_path):
    assert adamllm("nope").returncode == 2
    result = adamllm("run", str(tmp_path / "missing.yaml"))
    assert result.returncode == 1 and "no such file" in result.stderr
