"""Commands for training outputs: export."""
from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    cli.add_command(export)


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--merge-lora", is_flag=True, help="Merge a LoRA adapter into the base weights.")
@click.pass_context
def export(ctx: click.Context, run_dir: str, out_dir: str, merge_lora: bool) -> None:
    """Write RUN_DIR's trained model to OUT_DIR: safetensors, processor, tokenizer, chat template."""
    from .cli import _app
    from .export import ExportError, export_run

    try:
        path = export_run(run_dir, out_dir, _app(ctx).plugins, merge_lora=merge_lora)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"exported to {path}")
