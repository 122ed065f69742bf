"""The run folder's layout, owned here once: every path a stage writes and every reader reads.

A run folder ``OUT`` holds one folder per stage (``OUT/<stage>/``) with the stage's output (named
in the stage table, ``adamllm.stages``: ``triplets.jsonl``, ``verdicts.jsonl``, ``mix.jsonl``, the
``model/`` folder, ``report.json``) and the files every stage keeps beside it: its markers
(``_done.json`` with the fingerprint of a finished stage, ``_running.json`` while it runs),
``stats.json`` and ``rejected.jsonl``. Under data parallelism each process appends to its rank's
shard of a file first (``adamllm.distributed.shard_path``). The evaluation keeps one folder per
benchmark (``OUT/evaluate/<benchmark>/predictions.jsonl``, ``run.json``, ``rejected.jsonl``).

Writers and readers (the runner, the stages, ``adamllm inspect``, previews, exports, the demo)
ask a ``RunLayout`` instead of spelling these names.
"""
from __future__ import annotations

from pathlib import Path

DONE = "_done.json"
RUNNING = "_running.json"
STATS = "stats.json"
REJECTED = "rejected.jsonl"
#: synthesize: every pair handled, with or without a triplet (what a resume skips)
PROGRESS = "_progress.jsonl"
PREDICTIONS = "predictions.jsonl"
#: evaluation: what a benchmark's predictions were made with
RUN_FILE = "run.json"
REPORT = "report.json"


class RunLayout:
    """The paths of one run folder (``RunLayout(OUT)``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def stage(self, name: str) -> Path:
        return self.root / name

    def output(self, stage: str) -> Path:
        """The stage's output, as the stage table names it (``synthesize`` -> ``triplets.jsonl``)."""
        from .stages import stage as stage_row

        return self.stage(stage) / stage_row(stage).output

    def done(self, stage: str) -> Path:
        return self.stage(stage) / DONE

    def running(self, stage: str) -> Path:
        return self.stage(stage) / RUNNING

    def stats(self, stage: str) -> Path:
        return self.stage(stage) / STATS

    @property
    def progress(self) -> Path:
        return self.stage("synthesize") / PROGRESS

    @property
    def triplets(self) -> Path:
        return self.output("synthesize")

    @property
    def verdicts(self) -> Path:
        return self.output("filter")

    @property
    def mix(self) -> Path:
        return self.output("compose")


__all__ = ["DONE", "PREDICTIONS", "PROGRESS", "REJECTED", "REPORT", "RUNNING", "RUN_FILE", "RunLayout", "STATS"]
