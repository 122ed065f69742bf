"""Commands for scoring, evaluation and reports: ``adamllm score``, ``adamllm eval``, ``adamllm report``.

Heavy libraries (torch, transformers, datasets, matplotlib) are imported inside the commands.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

BUDGET_KEYS = ("min_pixels", "max_pixels")


def _pm(ctx: click.Context):
    from .cli import _app

    return _app(ctx).plugins


def _normal(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


def _benchmark_for(pm, name: str):
    """The benchmark component ``name`` (else the one whose name matches case-insensitively, with
    "-" for "_": "PMC-VQA", "VQA_RAD"), built with its config's defaults, unvalidated where the
    config has required fields (a ``source``: scoring reads no records); returns it and its name."""
    registry = pm.components("benchmark")
    matches = [name] if name in registry else [n for n in registry if _normal(n) == _normal(name)]
    if len(matches) > 1:
        raise click.ClickException(f"benchmark {name!r} is ambiguous: {', '.join(sorted(matches))}")
    spec = pm.spec("benchmark", matches[0] if matches else name)
    model = spec.load_config_model()
    if model is None:
        return spec.build(), spec.name
    try:
        config = model()
    except ValueError:  # pydantic's ValidationError: a required field
        config = model.model_construct()
    return spec.build(config), spec.name


def _line_form(path: str, message: str) -> str:
    """``adamllm.io``'s "FILE:N: ..." as this command writes it: "FILE, line N: ..."."""
    prefix = f"{Path(path)}:"
    number, sep, rest = message[len(prefix):].partition(":") if message.startswith(prefix) else ("", "", "")
    return f"{path}, line {number}:{rest}" if sep and number.isdigit() else message


def _score_file(path: str, judge, fields: tuple[str, ...]) -> tuple[list[dict], list]:
    """Read and score a predictions file; every record needs ``fields``. A bad record (a missing
    field, a prediction that is not a string, a null label, a label the scorer cannot read)
    raises ``DataError`` naming its line: a user's file is never scored in part."""
    from .io import DataError, iter_records

    records, scores = [], []
    for where, record in iter_records(path):
        missing = [name for name in fields if name not in record]
        if missing:
            raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
        if not isinstance(record.get("prediction"), str):
            shown = "null" if record.get("prediction") is None else type(record["prediction"]).__name__
            raise DataError(f"{where}: prediction must be a string, got {shown}")
        if record.get("label") is None:
            raise DataError(f"{where}: label is null")
        try:
            scores.append(judge.score_sample(record, len(records)))
        except (KeyError, ValueError, TypeError) as exc:  # TypeError: a plugin scorer given another type
            raise DataError(f"{where}: {exc}") from None
        records.append(record)
    return records, scores


@click.command("score")
@click.argument("benchmark")
@click.argument("predictions", type=click.Path(exists=True, dir_okay=False))
@click.option("--scorer", type=click.Choice(["legacy", "strict"]), default=None,
              help="legacy (default): the paper's rules, quirks included; strict: quirks fixed.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random choice when no option is parsed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def score(ctx: click.Context, benchmark: str, predictions: str, scorer: str | None, seed: int, as_json: bool) -> None:
    """Score PREDICTIONS (JSONL or a JSON array: prediction, label, the benchmark's fields) on BENCHMARK, no model needed.

    Fields: answer_type (OPEN/CLOSED) for slake, pathvqa, vqa_rad; A, B, C, D for pmc_vqa; optional id.
    Labels: Food101 the class name; Nutrition5K and FoodSeg103 a list of names.
    """
    from .benchmark import CheckedScorer, prediction_fields
    from .cli import json_stdout

    with json_stdout(as_json) as emit:
        bench, name = _benchmark_for(_pm(ctx), benchmark)
        try:
            judge = bench.get_scorer(scorer, seed) if scorer else bench.get_scorer(seed=seed)
            judge = CheckedScorer(judge, name)  # no NaN score is saved
            records, scores = _score_file(predictions, judge, prediction_fields(bench))
        except ValueError as exc:  # adamllm.io.DataError included
            raise click.ClickException(_line_form(predictions, str(exc))) from None
        aggregate = judge.aggregate(scores)
        if as_json:
            emit(json.dumps(_score_result(name, judge, records, aggregate, predictions), indent=2))
            return
    result = _score_result(name, judge, records, aggregate, predictions)
    click.echo(f"{name}: {len(records)} records, scorer {judge.scorer} ({judge.version}), scores ×100")
    for metric, value in result["scores"].items():
        click.echo(f"  {metric:<16} {value:8.2f}  (n={result['counts'][metric]})")


def _score_result(name: str, judge, records: list, aggregate: dict, predictions: str) -> dict:
    return {
        "benchmark": name,
        "scorer": judge.scorer,
        "scorer_version": judge.version,
        "n_records": len(records),
        "scores": {m: aggregate[m] for m in judge.metrics if m in aggregate},
        "counts": {m: aggregate[f"n_{m}"] for m in judge.metrics if f"n_{m}" in aggregate},
        "file": predictions,
    }


def _takes_source(pm, name: str) -> bool:
    model = pm.spec("benchmark", name).load_config_model()
    return "source" in getattr(model, "model_fields", {})


def _overrides(names: list[str], data_root: str | None, sources: tuple[str, ...], pm=None) -> dict[str, dict]:
    """Per benchmark its ``source`` (and later ``limit``) options. ``--data-root DIR``: every benchmark
    that takes a source and has no ``--source`` needs ``DIR/<benchmark>/`` (a missing folder is an
    error, not a fall back to the hub)."""
    options: dict[str, dict] = {name: {} for name in names}
    explicit = {item.partition("=")[0] for item in sources}
    if data_root:
        for name in names:
            folder = Path(data_root) / name
            if folder.exists():
                options[name]["source"] = str(folder)
            elif name not in explicit and (pm is None or _takes_source(pm, name)):
                raise click.BadParameter(f"no folder {folder} for benchmark {name!r} (--data-root needs "
                                         f"DIR/<benchmark>/ for each benchmark; or give it --source {name}=PATH)",
                                         param_hint="--data-root")
    for item in sources:
        name, sep, path = item.partition("=")
        if not sep or name not in options:
            raise click.BadParameter(f"{item!r}: expected BENCHMARK=PATH with a benchmark of --benchmarks",
                                     param_hint="--source")
        options[name]["source"] = path
    return options


@click.command("eval")
@click.option("--backbone", required=True, help="Backbone adapter name (qwen2_vl, qwen2_5_vl, qwen3_vl, llava_next, mllama, ...).")
@click.option("--model", required=True, help="Checkpoint: hub id or local folder.")
@click.option("--benchmarks", "benchmark_list", required=True,
              help="Comma-separated benchmarks; a domain name (biomed, food) stands for its benchmarks.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N samples of each benchmark.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Output folder (default: runs/eval/<model name>). A rerun resumes it.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Generation batch size (default: 8 or the benchmark's).")
@click.option("--scorer", type=click.Choice(["legacy", "strict"]), default=None,
              help="Scorer of the built-in benchmarks (default: legacy, as the paper computed its numbers).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the scorers' random fallbacks.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), help="Replace every benchmark's answer budget.")
@click.option("--data-root", type=click.Path(exists=True, file_okay=False),
              help="Folder with one sub-folder per benchmark (public layout) used as its source.")
@click.option("--source", "sources", multiple=True, metavar="BENCHMARK=PATH",
              help="A benchmark's records: local folder/file or hub dataset id (repeatable).")
@click.option("--min-pixels", type=click.IntRange(min=1),
              help="Qwen-VL families: smallest image budget in pixels (default: the model's adamllm.json, "
                   "else the paper's evaluation budget).")
@click.option("--max-pixels", type=click.IntRange(min=1), help="Qwen-VL families: largest image budget in pixels.")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16", "auto"]), help="Weights dtype.")
@click.option("--device", help="cpu, cuda, cuda:1 or auto (with several processes, cuda means each its own GPU).")
@click.option("--engine", type=click.Choice(["transformers", "vllm"]), default=None,
              help="What generates: transformers (default) or vLLM (an optional install).")
@click.option("--force", is_flag=True, help="Discard earlier predictions in the output folder.")
@click.option("--allow-pickle-weights", is_flag=True,
              help="Load pickle weights (pytorch_model.bin) of a checkpoint without safetensors (they can run code).")
@click.option("--on-bad-record", type=click.Choice(["skip", "error"]), default="skip", show_default=True,
              help="A bad sample (unscoreable label, unreadable image, ...): skip sets it aside in "
                   "OUT/<benchmark>/rejected.jsonl (counted as n_rejected, not scored); error stops, naming it.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def eval_command(ctx: click.Context, backbone: str, model: str, benchmark_list: str, limit: int | None,
                 out_dir: str | None, batch_size: int | None, scorer: str | None, seed: int,
                 max_new_tokens: int | None, data_root: str | None, sources: tuple[str, ...], min_pixels: int | None,
                 max_pixels: int | None, dtype: str | None, device: str | None, engine: str | None, force: bool,
                 allow_pickle_weights: bool, on_bad_record: str, quiet: bool) -> None:
    """Evaluate MODEL on benchmarks: batched greedy generation, per-sample JSONL, report files.

    Resumable (finished samples are skipped) and data parallel under `accelerate launch`.
    """
    from .cli import command_line
    from .distributed import World
    from .evaluation import build_task, discard_predictions, evaluate, expand_names, per_process_device
    from .locking import check_output_folder, output_lock

    if out_dir:  # never a root or the home folder, before anything is loaded (the run's own check)
        check_output_folder(out_dir)
    pm = _pm(ctx)
    names = expand_names(pm, [n.strip() for n in benchmark_list.split(",") if n.strip()])
    if not names:
        raise click.BadParameter("name at least one benchmark", param_hint="--benchmarks")
    options = _overrides(names, data_root, sources, pm)
    for name in names:
        if limit is not None:
            options[name]["limit"] = limit
    explicit = {item.partition("=")[0] for item in sources}
    tasks = [build_task(pm, name, options[name], required=("source",) if name in explicit else ())
             for name in names]
    spec = pm.spec("backbone", backbone)
    config_model = spec.load_config_model()
    backbone_options = {"model": model}
    budget = image_budget(model, min_pixels, max_pixels)
    backbone_options.update({k: v for k, v in budget.items() if k in BUDGET_KEYS and v is not None})
    if dtype:
        backbone_options["dtype"] = dtype
    if engine:
        backbone_options["engine"] = engine
    if device:
        backbone_options["device"] = per_process_device(device)
    if allow_pickle_weights:
        backbone_options["allow_pickle_weights"] = True
    try:
        adapter = spec.build(config_model(**backbone_options) if config_model else None)
    except ValueError as exc:  # pydantic's ValidationError: a bad option
        raise click.ClickException(f"backbone {backbone!r}: {str(exc).splitlines()[-1].strip()}") from None

    out = Path(out_dir) if out_dir else Path("runs") / "eval" / (Path(model.rstrip("/")).name or "model")
    with output_lock(out, command=command_line(ctx, "--model", model, "--benchmarks", benchmark_list)):
        if force:
            discard_predictions(out, names)
        report = evaluate(adapter, tasks, out, limit=limit, batch_size=batch_size, scorer=scorer, seed=seed,
                          model_name=model, max_new_tokens=max_new_tokens, on_bad_record=on_bad_record,
                          progress=not quiet, extra={"image_budget": budget})
    from .reports import markdown

    if not World().is_main:
        return
    click.echo(markdown(report))
    for name, entry in report["benchmarks"].items():
        if entry["n_errors"]:
            click.echo(f"warning: {name}: the backbone refused {entry['n_errors']} of {entry['n_samples']} samples "
                       f"(they score as empty answers; see 'error' in {out / entry['predictions']})", err=True)
        if entry.get("n_rejected"):
            click.echo(f"warning: {name}: {entry['n_rejected']} bad records set aside, not scored "
                       f"(see {out / entry['rejected']})", err=True)
    click.echo(f"wrote {out / 'report.json'}, {out / 'report.md'}, {out / 'report.png'}")


def image_budget(model: str, min_pixels: int | None, max_pixels: int | None) -> dict:
    """The image budget ``adamllm eval`` uses: ``--min-pixels``/``--max-pixels`` when given, else the
    one a model folder's ``adamllm.json`` records (what it was trained with; for ``OUT/train/model``
    of a run trained before that file, its train stage's fingerprint), else none (the
    backbone's own evaluation default: the paper's budget for the Qwen-VL families). ``from`` says
    which; the report and its Markdown (printed at the end) say the budget in force and where from."""
    from .export import MODEL_SETTINGS, ExportError, read_model_settings, run_image_budget

    if min_pixels is not None or max_pixels is not None:
        if min_pixels is not None and max_pixels is not None and min_pixels > max_pixels:
            raise click.BadParameter(f"--min-pixels {min_pixels} is larger than --max-pixels {max_pixels}",
                                     param_hint="--min-pixels")
        return {"min_pixels": min_pixels, "max_pixels": max_pixels, "from": "--min-pixels/--max-pixels"}
    try:
        settings = read_model_settings(model)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    recorded = (settings or {}).get("image_budget")
    if recorded:
        return {**{k: recorded.get(k) for k in BUDGET_KEYS}, "from": str(Path(model) / MODEL_SETTINGS)}
    run = Path(model).parent
    if settings is None and (run / "run_info.json").is_file():  # OUT/train/model of a run trained before adamllm.json
        budget, where = run_image_budget(run)
        if budget:
            return {**budget, "from": where}
    return {"min_pixels": None, "max_pixels": None, "from": "the backbone's evaluation default"}


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--out", "png", type=click.Path(dir_okay=False), help="Also write a bar chart (PNG) here.")
def report_command(run_dirs: tuple[str, ...], as_json: bool, png: str | None) -> None:
    """Compare evaluation runs side by side (each RUN_DIR holds report.json, or evaluate/report.json)."""
    from .reports import compare, compare_markdown, load_runs, plot

    runs = load_runs(run_dirs)
    if png:
        plot(runs, png)
    click.echo(json.dumps(compare(runs), indent=2) if as_json else compare_markdown(runs))


def register(cli: click.Group) -> None:
    cli.add_command(score)
    cli.add_command(eval_command)
    cli.add_command(report_command)
