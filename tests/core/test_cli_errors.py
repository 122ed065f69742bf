"""One error path for every command: an expected error is one ``Error:`` line and exit code 1, a bug
a one-line "internal error", the traceback only with ``-v``; usage errors exit 2, Ctrl-C 130."""
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from adamllm.cli import cli
from adamllm.config import ConfigError
from adamllm.errors import friendly
from adamllm.evaluation import EvaluationError
from adamllm.export import ExportError
from adamllm.io import DataError
from adamllm.locking import LockedError
from adamllm.registry import PluginError, UnknownComponentError
from adamllm.stages import StageError
from adamllm.testing.distributions import fake_distribution

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "benchmarks"


def _hub_error():
    from huggingface_hub.errors import LocalEntryNotFoundError

    def hf_hub_download(repo_id):  # the local the handler reads the model id from, as in huggingface_hub
        raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache and outgoing traffic "
                                      "has been disabled.\nTo enable hf.co look-ups, set local_files_only=False.")
    try:
        hf_hub_download("Org/NoSuchModel")
    except LocalEntryNotFoundError as exc:
        return exc


def _validation_error():
    from pydantic import BaseModel

    class Options(BaseModel):
        limit: int

    try:
        Options(limit="many")
    except ValueError as exc:
        return exc


def _trainer_error():
    from adamllm.plugins.sft.trainer import TrainerError

    return TrainerError("mode 'qlora' needs a CUDA GPU (4-bit bitsandbytes kernels); use mode: lora")


#: (what is raised, the exact stderr line(s) after "Error: ").
EXPECTED = [
    (lambda: DataError("data/mix.jsonl:3: missing field 'messages'"), "data/mix.jsonl:3: missing field 'messages'"),
    (lambda: ConfigError([("trainer.mode", "bad mode")], source="x.yaml"), "x.yaml: invalid run config:\n  trainer.mode: bad mode"),
    (lambda: StageError("stage 'train' needs a 'trainer' section"), "stage 'train' needs a 'trainer' section"),
    (lambda: EvaluationError("slake: no prediction for sample '3'"), "slake: no prediction for sample '3'"),
    (lambda: ExportError("run holds no trained run"), "run holds no trained run"),
    (lambda: PluginError("plugin 'x' failed to load"), "plugin 'x' failed to load"),
    (lambda: UnknownComponentError("unknown backbone 'nope'"), "unknown backbone 'nope'"),
    (_trainer_error, "mode 'qlora' needs a CUDA GPU (4-bit bitsandbytes kernels); use mode: lora"),
    (lambda: LockedError(Path("out"), {"pid": 7, "host": "h", "started": "t", "command": "adamllm run x.yaml"}),
     "out is in use by pid 7 on h since t (adamllm run x.yaml); wait for it or use another output folder"),
    (lambda: FileNotFoundError(2, "No such file or directory", "x.yaml"), "[Errno 2] No such file or directory: 'x.yaml'"),
    (lambda: PermissionError(13, "Permission denied", "out"), "[Errno 13] Permission denied: 'out'"),
    (lambda: IsADirectoryError(21, "Is a directory", "d"), "[Errno 21] Is a directory: 'd'"),
    (lambda: OSError("cannot read checkpoint\nsecond line\nthird"), "cannot read checkpoint"),
    (_hub_error, "cannot reach the model hub for 'Org/NoSuchModel' (offline?): give a local folder or set HF_HUB_OFFLINE=0"),
    (_validation_error, "Options: limit: Input should be a valid integer, unable to parse string as an integer"),
    (lambda: ValueError("a library refused an option\nwith details"), "a library refused an option"),
    (lambda: ModuleNotFoundError("No module named 'peft'", name="peft"), "No module named 'peft': install it (pip install peft)"),
    (lambda: TypeError("unsupported operand"),
     "internal error: TypeError: unsupported operand (rerun with -v for the traceback and report it)"),
    (lambda: AttributeError("'NoneType' object has no attribute 'x'"),
     "internal error: AttributeError: 'NoneType' object has no attribute 'x' (rerun with -v for the traceback and report it)"),
]


def _leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _leaf_commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def _value(param: click.Parameter, tmp_path: Path) -> str:
    kind = param.type
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, click.types.IntParamType):
        return "1"
    if isinstance(kind, click.Path):
        if not kind.exists:
            return str(tmp_path / "new")
        if kind.file_okay and not kind.dir_okay:
            (tmp_path / "file.jsonl").write_text("{}\n")
            return str(tmp_path / "file.jsonl")
        return str(tmp_path)
    return "x"


def _arguments(command: click.Command, tmp_path: Path) -> list[str]:
    """The least a valid invocation of ``command`` needs: its arguments and required options."""
    args: list[str] = []
    for param in command.params:
        if isinstance(param, click.Argument):
            args.append(_value(param, tmp_path))
        elif param.required:
            args += [param.opts[0], _value(param, tmp_path)]
    return args


COMMANDS = sorted(_leaf_commands(cli))


def test_every_builtin_command_is_walked():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert names >= {"plugins list", "components list", "config schema", "config validate", "run", "tiny",
                     "score", "eval", "report", "export"}


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_goes_through_the_one_error_path(path, command, tmp_path, monkeypatch):
    runner = CliRunner()
    args = [*path, *_arguments(command, tmp_path)]
    for make, line in EXPECTED:
        error = make()

        def fail(*_args, **_kwargs):
            raise error

        monkeypatch.setattr(command, "callback", fail)
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, (args, line, result.output)
        assert result.stderr == f"Error: {line}\n", (args, result.stderr)
        assert "Traceback" not in result.output
    monkeypatch.setattr(command, "callback", lambda **_: (_ for _ in ()).throw(KeyboardInterrupt()))
    interrupted = runner.invoke(cli, args)
    assert interrupted.exit_code == 130 and "interrupted; rerun the same command to resume" in interrupted.stderr


def test_verbose_adds_the_traceback(tmp_path, monkeypatch):
    command = cli.commands["report"]

    def fail(**_kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(command, "callback", fail)
    result = CliRunner().invoke(cli, ["-v", "report", str(tmp_path)])
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr and 'raise TypeError("a bug")' in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == "Error: internal error: TypeError: a bug (report it)"


def test_click_usage_errors_keep_exit_code_2(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["run"]).exit_code == 2  # missing argument
    assert runner.invoke(cli, ["tiny", "qwen2_vl", str(tmp_path / "t"), "--size", "huge"]).exit_code == 2
    empty = runner.invoke(cli, ["eval", "--backbone", "qwen2_vl", "--model", "m", "--benchmarks", ","])
    assert empty.exit_code == 2 and "name at least one benchmark" in empty.stderr  # BadParameter inside a command


def test_friendly_is_none_only_for_bugs():
    for make, _ in EXPECTED[:-2]:
        assert friendly(make()) is not None
    assert friendly(TypeError("x")) is None and friendly(KeyError("k")) is None


# -- as a user runs it ----------------------------------------------------------------------
def adamllm(*args, cwd=None, pythonpath=None, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ADAMLLM_")}
    environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})})
    if pythonpath:
        environ["PYTHONPATH"] = os.pathsep.join([str(pythonpath), environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          env=environ, cwd=cwd, timeout=300)


def test_offline_hub_model_is_one_line_and_verbose_shows_the_traceback(tmp_path):
    result = adamllm("eval", "--backbone", "qwen2_vl", "--model", "Org/NoSuchModel", "--benchmarks", "slake",
                     "--limit", "1", cwd=tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) < 3 and result.stderr.startswith("Error: "), result.stderr
    # with a local benchmark source the model is what cannot be reached
    local = ("eval", "--backbone", "qwen2_vl", "--model", "Org/NoSuchModel", "--benchmarks", "slake", "--source",
             f"slake={FIXTURES / 'slake'}", "--limit", "1", "--quiet", "--out", str(tmp_path / "out"))
    result = adamllm(*local, cwd=tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: ") and "Org/NoSuchModel" in line, result.stderr
    verbose = adamllm("-v", *local, cwd=tmp_path)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
    assert verbose.stderr.rstrip().splitlines()[-1] == line


def test_qlora_on_cpu_is_one_line_naming_qlora(tmp_path):
    from adamllm.testing.data import write_mix

    write_mix(tmp_path / "data", n=2)
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: out\nstages: [train]\nbackbone: {type: qwen2_vl, model: base, tiny: tiny}\n"
                      "trainer: {type: sft, mode: qlora, max_steps: 1}\ndata: {train: data/mix.jsonl}\n")
    result = adamllm("run", str(config))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "qlora" in errors[0], result.stderr  # (progress bars of the tiny model aside)
    assert result.stderr.rstrip().splitlines()[-1] == errors[0] and "Traceback" not in result.stderr


def test_plugin_commands_go_through_the_one_error_path(tmp_path):
    source = ("import click\nfrom adamllm import hookimpl\nfrom adamllm.io import DataError\n"
              "@hookimpl\ndef adamllm_register_commands(cli):\n"
              "    @cli.command('bad-data')\n    def bad_data():\n        raise DataError('pairs.jsonl:2: no caption')\n"
              "    @cli.command('bug')\n    def bug():\n        return None + 1\n")
    fake_distribution(tmp_path, "adamllm-failing", modules={"failing_plugin": source},
                      entry_points={"adamllm-failing": "failing_plugin"})
    data = adamllm("bad-data", pythonpath=tmp_path)
    assert data.returncode == 1 and data.stderr == "Error: pairs.jsonl:2: no caption\n"
    bug = adamllm("bug", pythonpath=tmp_path)
    assert bug.returncode == 1 and bug.stderr.startswith("Error: internal error: TypeError: unsupported operand")
    assert len(bug.stderr.splitlines()) == 1
    assert "Traceback" in adamllm("-v", "bug", pythonpath=tmp_path).stderr


def test_errors_while_parsing_go_through_it_too(tmp_path):
    fake_distribution(tmp_path, "adamllm-broken", modules={"broken_plugin": "import not_a_real_module_xyz\n"},
                      entry_points={"adamllm-broken": "broken_plugin"})
    result = adamllm("--strict-plugins", "--version", pythonpath=tmp_path)  # an eager option loads plugins
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: plugin 'adamllm-broken'") and "not_a_real_module_xyz" in line
