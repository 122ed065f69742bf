"""``adamllm run CONFIG --preview N``: the data stages on the first N pairs, in a folder of their own.

Before spending GPU-days on synthesis, a user wants to read a handful of triplets, verdicts and
composed examples made by exactly the configured synthesizer, filter and composer. A preview runs
the config's synthesize / filter / compose stages (train and evaluate are left out) on the first
N image-caption pairs into ``<output_dir>-preview/``, from scratch every time (it is small), and
prints the first few results. The main run's folder is never touched; a synthesizer tuned there
(``OUT/tune``) is used, read-only. A run whose synthesizer is still to be tuned is refused: the
preview would have to tune it first, which is the expensive part.

Starting from scratch means emptying the folder, so a preview marks the folder it makes
(``MARKER``) and empties only a folder with that mark: a ``<output_dir>-preview/`` holding anything
else (a user's own folder of that name) is refused unless ``--force``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

from .layout import RunLayout
from .stages import StageError

PREVIEW_STAGES = ("synthesize", "filter", "compose")
SHOWN = 5
MARKER = ".adamllm-preview"


def check_preview_folder(folder: Path, force: bool = False) -> None:
    """Refuse a non-empty ``folder`` that no preview made (no ``MARKER``), unless ``force``."""
    from .locking import LOCK_FILE

    if force or not folder.is_dir() or (folder / MARKER).is_file():
        return
    if any(child.name != LOCK_FILE for child in folder.iterdir()):
        raise StageError(f"{folder} is not empty and was not made by a preview (no {MARKER} in it): a preview "
                         f"empties its folder first; move its files, or use --force to let it empty the folder")


def preview_dir(output_dir: Path) -> Path:
    return output_dir.with_name(output_dir.name + "-preview")


def run_preview(config: Any, plugins: Any, n: int, stages: list[str] | None = None,
                echo: Callable[[str], None] = print, force: bool = False) -> dict[str, dict]:
    """Run the preview stages on ``n`` pairs; returns their summaries. ``force``: empty the preview
    folder even if no preview made it."""
    from .runner import done_marker, run_pipeline

    wanted = [s for s in (stages or config.stages) if s in PREVIEW_STAGES]
    if not wanted:
        raise StageError(f"nothing to preview: --preview runs {', '.join(PREVIEW_STAGES)}, and the run's "
                         f"stages are {', '.join(stages or config.stages)}")
    main, out = config.output_dir, preview_dir(config.output_dir)
    tuned = done_marker(main, "tune")
    if "tune" in config.stages and "synthesize" in wanted and not tuned.exists():
        raise StageError("the synthesizer of this run is tuned by its 'tune' stage, which has not run: "
                         "run `adamllm run CONFIG --stages tune` first (a preview does not tune)")
    check_preview_folder(out, force)
    _empty(out)
    if tuned.exists():  # the main run's tuned synthesizer, used as it is
        (out / "tune").symlink_to((main / "tune").resolve(), target_is_directory=True)
    preview = config.model_copy(update={"output_dir": out})
    echo(f"[preview] {', '.join(wanted)} on the first {n} pairs, into {out}")
    summaries = run_pipeline(preview, plugins, wanted, force=True, echo=echo, pair_limit=n, record_prompts=True)
    for line in describe(out):
        echo(line)
    return summaries


def _empty(folder: Path) -> None:
    """Remove an earlier preview (checked by ``check_preview_folder``), keeping the lock the CLI
    holds on the folder, and mark the folder as a preview's."""
    from .locking import LOCK_FILE

    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by adamllm run --preview; emptied by the next preview\n", encoding="utf-8")
    for child in folder.iterdir():
        if child.name in (LOCK_FILE, MARKER):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def describe(out: Path, shown: int = SHOWN) -> list[str]:
    """The first prompt each stage sent, the first few triplets with their verdicts, and where
    every file is."""
    from .runner import PROMPTS

    lines = []
    for stage in ("synthesize", "filter"):
        first = _first(out / stage / PROMPTS, 1)
        if first:
            bos = " (the tokenizer's BOS is added in front)" if first[0].get("add_bos") else ""
            lines += [f"[preview] the first {stage} prompt, exactly as sent{bos} "
                      f"({out.name}/{stage}/{PROMPTS} has them all):", first[0].get("prompt", ""), ""]
    triplets = _first(RunLayout(out).triplets, shown)
    verdicts = {v["id"]: v for v in _first(RunLayout(out).verdicts, None)}
    for t in triplets:
        verdict = verdicts.get(t["id"], {}).get("verdict")
        lines += [f"--- {Path(t.get('image', '?')).name}" + (f" (filter: {verdict})" if verdict else ""),
                  f"  instruction: {t.get('instruction')}", f"  precise:     {t.get('precise')}",
                  f"  informative: {t.get('informative')}"]
    if not triplets:
        lines.append("[preview] no triplet was written: see synthesize/stats.json for why")
    files = [p for p in sorted(out.glob("*/*.json*")) if not p.name.startswith("_")]
    lines.append("[preview] files: " + ", ".join(str(p.relative_to(out.parent)) for p in files))
    return lines


def _first(path: Path, n: int | None) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if n is not None and len(rows) >= n:
                break
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows
