"""Entry-point module of ``adamllm demo``: registers the command; the recipe is imported when it runs."""
import click

from adamllm import hookimpl

BACKBONES = ("qwen2_vl", "llava_next", "mllama")


@hookimpl
def adamllm_register_commands(cli):
    @cli.command()
    @click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/demo", show_default=True,
                  help="Folder of the whole demo: world, general model, one run per row, report.")
    @click.option("--backbone", type=click.Choice(BACKBONES), default="qwen2_vl", show_default=True)
    @click.option("--fast", is_flag=True, help="A smaller world and shorter training (CI: about 3 minutes).")
    @click.option("--ablation", is_flag=True, help="Also the rules-synthesizer, two-stage and no-filter rows.")
    @click.option("--seed", type=int, default=0, show_default=True)
    def demo(out_dir: str, backbone: str, fast: bool, ablation: bool, seed: int) -> None:
        """The method end to end on a toy domain, offline on a CPU: general model, tune the synthesizer,
        synthesize, filter, compose, train, evaluate; prints general vs caption-only vs AdaMLLM.

        Rerun to resume: finished steps are reused."""
        from dataclasses import replace

        from .recipe import DemoSettings, run_demo

        run_demo(out_dir, replace(DemoSettings.for_run(backbone, fast), seed=seed), ablation=ablation,
                 echo=click.echo)
