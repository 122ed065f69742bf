"""The ``adamllm`` command line.

Built-in commands resolve without loading plugins; plugins load once, on first need, with the
global flags (``--strict-plugins``, ``--no-plugins``). Plugins add commands through
``adamllm_register_commands``. Heavy libraries are imported inside the commands that need them.

Every command, built-in or from a plugin, runs through one error path (``PluginGroup``): an
expected error (``adamllm.errors.friendly``) is one ``Error: ...`` line on stderr and exit code 1,
an unexpected one a one-line "internal error"; ``-v`` adds the traceback. Click's usage errors keep
exit code 2; Ctrl-C exits with 130.
"""
from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import click

from . import __version__
from .errors import first_line, friendly, internal
from .registry import PluginManager
from .stages import KIND_TABLE, KINDS, STAGES


class App:
    """Per-invocation state: the global flags and the lazily loaded plugin manager."""

    def __init__(self, strict: bool = False, no_plugins: bool = False, verbose: bool = False) -> None:
        self.strict = strict or None  # None: fall back to ADAMLLM_STRICT_PLUGINS
        self.no_plugins = no_plugins
        self.verbose = verbose
        self._pm: PluginManager | None = None

    @property
    def plugins(self) -> PluginManager:
        if self._pm is None:
            self._pm = PluginManager(strict=self.strict, no_plugins=self.no_plugins)
            if self.verbose:
                for info in self._pm.failed():
                    click.echo(info.traceback or "", err=True)
        return self._pm


def _app(ctx: click.Context) -> App:
    root = ctx.find_root()
    if root.obj is None:
        params = root.params
        root.obj = App(params.get("strict_plugins", False), params.get("no_plugins", False), params.get("verbose", False))
    return root.obj


@contextlib.contextmanager
def one_error_path(verbose: Callable[[], bool], plugins: Callable[[], PluginManager | None] = lambda: None
                   ) -> Iterator[None]:
    """The CLI's one error path: what an exception raised by a command (or while parsing) becomes.
    An error from a third-party plugin's code names the plugin and its component."""
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise  # click's own: usage errors exit 2, the rest 1
    except KeyboardInterrupt:
        click.echo("\ninterrupted; rerun the same command to resume", err=True)
        raise click.exceptions.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into messages
        show = verbose()
        if show:
            click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
        message = friendly(exc)
        pm = plugins()
        culprit = pm.blame(exc) if pm is not None else None
        if culprit is not None:
            message = _plugin_message(exc, *culprit, message, show)
        raise click.ClickException(message if message is not None else internal(exc, show)) from None


def _plugin_message(exc: BaseException, info: Any, registered: Any, message: str | None, verbose: bool) -> str:
    """One line for an error raised in (or by a result of) a third-party plugin's code."""
    who = f"plugin {info.name!r} ({info.distribution} {info.version})"
    if registered is not None:
        component = f"{registered.spec.kind} {registered.spec.name!r}"
        who += f", {component}"
        if message is not None and message.startswith(component + ": "):
            message = message[len(component) + 2:]
    if message is not None:
        return f"{who}: {message}"
    detail = f"{type(exc).__name__}: {first_line(exc)}" if str(exc).strip() else type(exc).__name__
    hint = "" if verbose else "-v shows the traceback; "
    return (f"{who} failed: {detail} (a bug in the plugin: {hint}report it to its authors, or skip the plugin "
            f"with ADAMLLM_DISABLE_PLUGINS={info.name})")


@contextlib.contextmanager
def json_stdout(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """For a ``--json`` command: yields ``emit(text)``, the one writer to the real stdout, while
    everything else written there (a plugin's ``print`` at import or in a hook or component) goes
    to stderr, so stdout stays parseable. At the file-descriptor level when stdout is the
    process's own, so that output from C code and child processes is moved too."""
    if not enabled:
        yield click.echo
        return
    real = sys.stdout
    try:
        fd = real.fileno() if real is sys.__stdout__ else None
        err = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is None:  # a replaced sys.stdout or stderr (click's test runner, a notebook)
        with contextlib.redirect_stdout(sys.stderr):
            yield lambda text: click.echo(text, file=real)
        return
    real.flush()
    saved = os.dup(fd)
    os.dup2(err, fd)
    try:
        with open(saved, "w", encoding="utf-8", closefd=False) as out:
            yield lambda text: (out.write(text + "\n"), out.flush())
    finally:
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)


def _verbose_in(args: Iterable[str]) -> bool:
    """``-v`` among the global options (before the command name)."""
    for arg in args:
        if arg in ("-v", "--verbose"):
            return True
        if not arg.startswith("-"):
            return False
    return False


class PluginGroup(click.Group):
    """The root group: adds plugin commands the first time a name is not a built-in command, and
    runs every command (built-in, plugin, subgroup) through ``one_error_path``."""

    _plugin_commands_added = False

    def make_context(self, info_name, args, parent=None, **extra):
        if parent is not None:
            return super().make_context(info_name, args, parent=parent, **extra)
        verbose = _verbose_in(args)
        with one_error_path(lambda: verbose):  # eager options: --version, --help list plugins
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context):
        if ctx.parent is not None:
            return super().invoke(ctx)
        with one_error_path(lambda: bool(ctx.params.get("verbose")),
                            lambda: ctx.obj._pm if isinstance(ctx.obj, App) else None):
            return super().invoke(ctx)

    def _add_plugin_commands(self, ctx: click.Context) -> None:
        if not self._plugin_commands_added:
            self._plugin_commands_added = True
            _app(ctx).plugins.pm.hook.adamllm_register_commands(cli=self)

    def get_command(self, ctx: click.Context, cmd_name: str):
        command = super().get_command(ctx, cmd_name)
        if command is None and not ctx.resilient_parsing:
            self._add_plugin_commands(ctx)
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context):
        if not ctx.resilient_parsing:
            self._add_plugin_commands(ctx)
        return super().list_commands(ctx)


def _print_version(ctx: click.Context, _param: Any, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"adamllm {__version__}")
    pm = App(ctx.params.get("strict_plugins", False), ctx.params.get("no_plugins", False)).plugins
    for info in pm.plugins.values():
        status = "" if info.status == "active" else f" [{info.status}]"
        click.echo(f"  {info.name} ({info.distribution} {info.version}){status}")
    ctx.exit()


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--strict-plugins", is_flag=True, is_eager=True, help="A plugin that fails to load is an error.")
@click.option("--no-plugins", is_flag=True, is_eager=True, help="Load no third-party plugins (built-ins only).")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks (of an error, of plugins that failed to load).")
@click.option("--version", is_flag=True, expose_value=False, callback=_print_version,
              help="Show the version and the installed plugins, then exit.")
@click.pass_context
def cli(ctx: click.Context, strict_plugins: bool, no_plugins: bool, verbose: bool) -> None:
    """adamllm: post-train multimodal LLMs for a domain from its image-caption pairs."""
    ctx.obj = App(strict_plugins, no_plugins, verbose)


# -- plugins and components -----------------------------------------------------------------
@cli.group()
def plugins() -> None:
    """Inspect installed plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def plugins_list(ctx: click.Context, as_json: bool) -> None:
    """List plugins: name, version, status and the components each contributes."""
    with json_stdout(as_json) as emit:
        pm = _app(ctx).plugins
        _ = pm.registries  # collect components (a plugin whose hook fails is marked failed)
        rows = [info.as_dict() for info in pm.plugins.values()]
        if as_json:
            emit(json.dumps(rows, indent=2))
            return
    for row in rows:
        status = row["status"] + (f": {row['error']}" if row["error"] else "")
        click.echo(f"{row['name']}  {row['distribution']} {row['version']}  [{status}]")
        for kind, names in row["components"].items():
            click.echo(f"    {kind}: {', '.join(names)}")
        for domain, parts in row.get("domains", {}).items():
            sources = ", ".join(f"{s['name']} ({s['format']})" for s in parts["sources"]) or "none"
            click.echo(f"    domain {domain}: benchmarks {', '.join(parts['benchmarks']) or 'none'}; sources {sources}")


@cli.group()
def components() -> None:
    """Inspect the components (backbones, benchmarks, ...) that plugins provide."""


@components.command("list")
@click.option("--kind", type=click.Choice(KINDS), help="Only this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def components_list(ctx: click.Context, kind: str | None, as_json: bool) -> None:
    """List components with their provider and description."""
    with json_stdout(as_json) as emit:
        rows = _component_rows(_app(ctx).plugins, kind)
        if as_json:
            emit(json.dumps(rows, indent=2))
            return
    for row in rows:
        click.echo(f"{row['kind']:<12} {row['name']:<16} {row['provider']:<24} {row['description']}")


def _component_rows(pm: PluginManager, kind: str | None) -> list[dict[str, Any]]:
    rows = []
    for k in [kind] if kind else KINDS:
        for name, registered in sorted(pm.components(k).items()):
            spec = registered.spec
            row = {
                "kind": k,
                "name": name,
                "plugin": registered.plugin.name,
                "provider": registered.provider,
                "description": spec.description,
                "config": spec.config if isinstance(spec.config, str) or spec.config is None
                else f"{spec.config.__module__}:{spec.config.__qualname__}",
            }
            if k == "domain":
                row["benchmarks"] = list(spec.benchmarks)
                row["sources"] = [s.name for s in spec.sources]
            rows.append(row)
    return rows


# -- config and run -------------------------------------------------------------------------
@cli.group()
def config() -> None:
    """Validate run configs and print their JSON Schema."""


@config.command("schema")
@click.pass_context
def config_schema(ctx: click.Context) -> None:
    """Print the run config's JSON Schema, built from the installed components."""
    from .config import json_schema

    click.echo(json.dumps(json_schema(_app(ctx).plugins), indent=2))


@config.command("validate")
@click.argument("config_file", type=click.Path(dir_okay=False))
@click.pass_context
def config_validate(ctx: click.Context, config_file: str) -> None:
    """Validate CONFIG_FILE; errors name the section and field."""
    from .config import load_config

    cfg = load_config(config_file, _app(ctx).plugins)
    chosen = []
    for kind in KIND_TABLE:
        value = getattr(cfg, kind.section)
        if value:
            chosen.append(f"{kind.section}=" + (",".join(v.type for v in value) if kind.many else value.type))
    click.echo(f"{config_file}: valid ({', '.join(chosen) or 'no components'}; stages: {', '.join(cfg.stages)})")


@cli.command()
@click.argument("config_file", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--stages", help=f"Comma-separated stages to run (default: the config's): {', '.join(STAGES)}.")
@click.option("--force", is_flag=True, help="Rerun the stages from scratch even if nothing changed (with --preview: "
                                           "empty OUTPUT_DIR-preview/ even if no preview made it).")
@click.option("--preview", type=click.IntRange(min=1), metavar="N",
              help="Run synthesize/filter/compose on the first N pairs into OUTPUT_DIR-preview/ and print "
                   "the first triplets (nothing else is run or changed).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: run the same command as WORKERS processes placed by Ray (a local cluster, or --address); "
                   "the files are a one-process run's, as under torchrun.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="With --executor ray.")
@click.option("--address", help="With --executor ray: the cluster to join (e.g. auto, or ray://HEAD:10001); "
                                "default: start a local one for this run.")
@click.option("--cpus-per-worker", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="With --executor ray.")
@click.option("--gpus-per-worker", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="With --executor ray (1: one GPU per worker).")
@click.pass_context
def run(ctx: click.Context, config_file: str, overrides: tuple[str, ...], stages: str | None, force: bool,
        preview: int | None, executor: str, workers: int, address: str | None, cpus_per_worker: float,
        gpus_per_worker: float) -> None:
    """Run the pipeline stages of CONFIG_FILE.

    KEY=VALUE arguments override config fields (trainer.learning_rate=2e-5, benchmarks.0.limit=4),
    validated like the file. A finished stage is skipped while its config sections and inputs are
    unchanged; when they change, it reruns (saying which fields changed), and so does every later stage.
    """
    from .config import load_config
    from .locking import output_lock
    from .runner import run_pipeline

    pm = _app(ctx).plugins
    cfg = load_config(config_file, pm, list(overrides))
    selected = [s.strip() for s in stages.split(",") if s.strip()] if stages is not None else None
    if selected == []:
        raise click.BadParameter("names no stage; leave --stages out to run the config's stages", param_hint="--stages")
    if preview is not None and executor != "local":
        raise click.BadParameter("a preview runs in this process; leave --executor out", param_hint="--preview")
    if preview is not None:
        from .preview import check_preview_folder, preview_dir, run_preview

        check_preview_folder(preview_dir(cfg.output_dir), force)  # before the lock file is put there
        with output_lock(preview_dir(cfg.output_dir), command=command_line(ctx, config_file, *overrides)):
            run_preview(cfg, pm, preview, selected, echo=click.echo, force=force)
        return
    if executor == "ray":
        from .ray_executor import RaySettings, run_on_ray

        args = [os.path.abspath(config_file), *overrides, *(["--stages", stages] if stages else []),
                *(["--force"] if force else [])]
        run_on_ray(args, RaySettings(workers, address, cpus_per_worker, gpus_per_worker), echo=click.echo)
        return
    with output_lock(cfg.output_dir, command=command_line(ctx, config_file, *overrides)):
        run_pipeline(cfg, pm, selected, force=force, echo=click.echo)


@cli.command()
@click.argument("backbone")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--size", type=click.Choice(["tiny", "small", "2b"]), default="tiny", show_default=True,
              help="tiny: ~0.3M parameters, for tests; small: a few M, for demos; 2b: Qwen2-VL-2B's "
                   "dimensions (qwen2_vl only; random bf16 weights, 4.4 GB, for GPU checks).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same weights.")
@click.option("--force", is_flag=True, help="Replace OUT_DIR if it is not empty.")
@click.pass_context
def tiny(ctx: click.Context, backbone: str, out_dir: str, size: str, seed: int, force: bool) -> None:
    """Write a tiny randomly initialised BACKBONE checkpoint to OUT_DIR (offline)."""
    from .specs import resolve

    pm = _app(ctx).plugins
    spec = pm.spec("backbone", backbone)
    if spec.tiny is None:
        raise click.ClickException(f"backbone {backbone!r} ({pm.get('backbone', backbone).provider}) has no tiny builder")
    with replacing(out_dir, force, command=command_line(ctx, backbone, out_dir)) as target:
        resolve(spec.tiny)(target, size=size, seed=seed)
    click.echo(f"wrote a {size} random {backbone} checkpoint to {out_dir}")


@cli.command("inspect")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON (card.json holds them too).")
@click.option("--sample", type=click.IntRange(0), default=8, show_default=True, help="Records shown per outcome.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the records' choice.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="The run config (default: read from the stages' fingerprints in RUN_DIR).")
@click.option("--against", multiple=True, type=click.Path(exists=True),
              help="Also compare the training images with this image folder or benchmark file (repeatable).")
@click.option("--threshold", type=click.IntRange(0, 32), default=4, show_default=True,
              help="Largest perceptual-hash distance (of 64 bits) of a possible near-duplicate (its finer hash and "
                   "colours must agree too).")
@click.option("--no-overlap", is_flag=True, help="Skip the overlap check with benchmark images.")
@click.option("--workers", type=click.IntRange(1), default=min(4, os.cpu_count() or 1), show_default="up to 4",
              help="Processes that decode images for hashing.")
@click.pass_context
def inspect_run(ctx: click.Context, run_dir: str, as_json: bool, sample: int, seed: int, config_file: str | None,
                against: tuple[str, ...], threshold: int, no_overlap: bool, workers: int) -> None:
    """Write RUN_DIR/card.html: counts per stage, length histograms, sampled records, overlap with benchmarks."""
    from .card import write_card

    with json_stdout(as_json) as emit:
        card, path = write_card(run_dir, _app(ctx).plugins, sample=sample, seed=seed, config=config_file,
                                against=against, threshold=threshold, overlap=not no_overlap, workers=workers)
        overlap = card.numbers["overlap"]
        checked = overlap["status"] in ("checked", "skipped")
        said = f" ({overlap['message']})" if checked else ""
        emit(json.dumps(card.numbers, indent=2) if as_json else f"wrote {path}{said}")
    if not checked:
        click.echo(f"warning: {overlap['message']}", err=True)


def command_line(ctx: click.Context, *args: str) -> str:
    """``adamllm COMMAND ARGS...`` as the user typed it (what a lock file records)."""
    return shlex.join(["adamllm", *ctx.command_path.split()[1:], *map(str, args)])


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@contextlib.contextmanager
def replacing(out_dir: str | os.PathLike, force: bool, *, keep: Iterable[str | os.PathLike] = (),
              command: str = "") -> Iterator[Path]:
    """The folder a command writes a new OUT_DIR into, under OUT_DIR's lock (``adamllm.locking``).
    A missing or empty OUT_DIR is used as it is; a non-empty one is refused unless ``force``, and
    then the new one is written next to it and replaces it only once complete (an error leaves the
    old one as it was). Never a root, mount point or the home folder (``check_output_folder``);
    never replaces the working directory or one of its parents; never a folder that is, holds or
    is inside one of ``keep`` (the command's input), even with ``force``."""
    from .locking import LOCK_FILE, check_output_folder, output_lock

    out = Path(out_dir)
    resolved = out.resolve()
    check_output_folder(out, replaced=True)
    for given in keep:
        kept = Path(given).resolve()
        if _is_within(resolved, kept) or _is_within(kept, resolved):
            relation = "is" if kept == resolved else "is inside" if kept in resolved.parents else "holds"
            raise click.ClickException(f"refusing to write {out}: it {relation} this command's input {given} "
                                       f"(even with --force); give a folder outside it")
    with output_lock(out, command=command, remove=True):  # a second writer is refused, naming this one
        if not any(p.name != LOCK_FILE for p in out.iterdir()):
            yield out
            return
        if not force:
            raise click.ClickException(f"{out} is not empty; use --force to replace it, or give another folder")
        if any(_is_within(p, resolved) for p in (Path.cwd().resolve(), Path.home().resolve())):
            raise click.ClickException(f"refusing to replace {out}: it holds the working directory or the home "
                                       f"folder; give another folder")
        staging = out.with_name(f".{out.name}.{os.getpid()}.new")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            yield staging
            old = out.with_name(f".{out.name}.{os.getpid()}.old")
            os.replace(out, old)
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _register_builtin_command_modules() -> None:
    """Commands of the evaluation and training parts live in their own modules."""
    from . import cli_eval, cli_train

    cli_eval.register(cli)
    cli_train.register(cli)


_register_builtin_command_modules()


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="adamllm")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
