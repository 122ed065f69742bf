"""Commands for training outputs: export."""
from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    cli.add_command(export)


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--merge-lora", is_flag=True, help="Merge a LoRA adapter into the base weights.")
@click.option("--force", is_flag=True, help="Replace OUT_DIR if it is not empty.")
@click.pass_context
def export(ctx: click.Context, run_dir: str, out_dir: str, merge_lora: bool, force: bool) -> None:
    """Write RUN_DIR's trained model to OUT_DIR: safetensors, processor, tokenizer, chat template."""
    from .cli import _app, command_line, replacing
    from .export import export_run, train_dir

    trained = train_dir(run_dir)  # a folder without a trained run is refused before OUT_DIR is touched
    command = command_line(ctx, run_dir, out_dir)
    with replacing(out_dir, force, keep=[run_dir, trained], command=command) as target:
        export_run(run_dir, target, _app(ctx).plugins, merge_lora=merge_lora)
    click.echo(f"exported to {out_dir}")
