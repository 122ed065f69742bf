"""The prediction store of a benchmark folder: claiming it for a run, resuming, merging the shards."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Iterable

from ..io import DataError, iter_records, temp_path, write_jsonl
from ..distributed import World
from ..layout import PREDICTIONS, RUN_FILE
from ..sharding import shards
from .task import EvaluationError

#: run.json keys that must match for finished predictions to be reused (``prompting``: the
#: backbone's evaluation settings, absent for a backbone without any; ``inputs``: the content of
#: the benchmark's local source, see ``input_signature``).
SIGNATURE_KEYS = ("model", "model_fingerprint", "generation", "prompting", "data", "inputs")


def _prediction_files(bench_dir: Path) -> list[Path]:
    return [bench_dir / PREDICTIONS, *shards(bench_dir / PREDICTIONS)]


def _read_records(path: Path) -> list[dict]:
    """The records of a predictions file; an unreadable line (a crash's torn tail) is skipped,
    as ``completed_ids`` skips it, so that sample is generated again."""
    if not path.exists():
        return []
    return [record for _, record in iter_records(path, tolerant=True) if "id" in record]


def model_fingerprint(model: str) -> str | None:
    """For a local checkpoint folder: a hash of its weight files' names, sizes and times, so that
    predictions of a retrained model at the same path are not taken for finished ones."""
    path = Path(model).expanduser() if model else None
    if path is None or not path.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(path.iterdir()):
        if file.suffix in (".safetensors", ".bin", ".json") and file.is_file():
            stat = file.stat()
            digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def input_signature(describe: dict, cache) -> dict | None:
    """The content of a benchmark's local source (``describe()["source"]``: its records file, or
    its folder of records and images), through ``cache`` (an ``adamllm.content.ContentCache``),
    so predictions made for edited questions, labels or images are not reused; None for a hub
    source (its id, revision and split are in ``data``) or a benchmark that names no source."""
    from ..content import content_identity

    source = describe.get("source") if isinstance(describe, dict) else None
    if not isinstance(source, str) or not source.startswith("/"):
        return None
    found = content_identity(Path(source), cache)
    return {"source": found} if found is not None else None


def _claim(bench_dir: Path, signature: dict, restart_stale: bool, world: World, changed: list[str] = (),
           samples: list | None = None, changed_paths: Iterable[str] = (), all_changed: bool = False) -> None:
    """Refuse (or, with ``restart_stale``, delete) predictions made with other settings. When only
    the benchmark's content changed (``inputs``), says which files changed (``changed``) and keeps
    only the predictions of samples that did not (``_keep_unchanged``; all are deleted when the
    changed files are not known, ``all_changed``): the same command on edited data must not reuse
    a prediction made for another question, label or image."""
    run_file = bench_dir / RUN_FILE
    stale, previous = [], {}
    if run_file.exists():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        stale = [key for key in SIGNATURE_KEYS if previous.get(key) != signature.get(key)]
    has_predictions = any(p.exists() for p in _prediction_files(bench_dir))
    edited = stale == ["inputs"]
    why = "changed since its predictions" if previous.get("inputs") else "is not recorded with its predictions"
    if stale and has_predictions and not restart_stale and not edited:
        raise EvaluationError(
            f"{bench_dir} holds predictions made with a different {', '.join(stale)}; "
            f"rerun with --force to discard them, or choose another output directory"
        )
    kept = edited and has_predictions and bool(changed) and samples is not None and not all_changed
    if edited and has_predictions and world.is_main:
        files = f" (changed file(s): {', '.join(changed)})" if changed else ""
        print(f"{bench_dir.name}: the benchmark's content {why} in {bench_dir}{files}; evaluating "
              f"{'the samples it changed' if kept else 'it'} again", file=sys.stderr)
    world.barrier()  # every process has read the old state before it changes
    if world.is_main:
        if kept:
            _keep_unchanged(bench_dir, samples, set(changed_paths))
        elif stale and (restart_stale or edited):
            for path in _prediction_files(bench_dir):
                path.unlink(missing_ok=True)
        bench_dir.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(run_file)
        tmp.write_text(json.dumps(signature, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, run_file)
    world.barrier()


def _plain(value):
    return json.loads(json.dumps(value, default=str))


def _keep_unchanged(bench_dir: Path, samples: list, changed_paths: set[str]) -> None:
    """Rewrite the predictions keeping those whose sample is still there with the same prompt,
    label, fields and image path, and whose image is not one of ``changed_paths``."""
    current = {sample.id: sample for sample in samples}
    kept = []
    for path in _prediction_files(bench_dir):
        for record in _read_records(path):
            sample = current.get(str(record["id"]))
            if sample is None or record.get("prompt") != sample.prompt or record.get("label") != _plain(sample.label):
                continue
            if any(record.get(k) != _plain(v) for k, v in sample.fields.items()):
                continue
            image = str(sample.image) if isinstance(sample.image, (str, Path)) else None
            if record.get("image") != image or (image is not None and str(Path(image).resolve()) in changed_paths):
                continue
            kept.append(record)
    for path in _prediction_files(bench_dir):
        path.unlink(missing_ok=True)
    if kept:
        write_jsonl(bench_dir / PREDICTIONS, kept)


def discard_predictions(out_dir: str | os.PathLike, names: Iterable[str]) -> None:
    """Delete the predictions (and run.json) of these benchmarks, to start over."""
    world = World()
    if world.is_main:
        for name in names:
            for path in [*_prediction_files(Path(out_dir) / name), Path(out_dir) / name / RUN_FILE]:
                path.unlink(missing_ok=True)
    world.barrier()


def merge_predictions(bench_dir: Path, samples: list, judge) -> list[dict]:
    """Merge the shards into predictions.jsonl in sample order and rescore every sample with
    ``judge``; returns the records of ``samples``. Lines of ids that are not in ``samples`` (an
    earlier run with a larger limit) stay at the end of the file, unscored."""
    by_id: dict[str, dict] = {}
    for path in _prediction_files(bench_dir):
        for record in _read_records(path):
            by_id.setdefault(str(record["id"]), record)
    ordered = []
    for index, sample in enumerate(samples):
        record = by_id.pop(sample.id, None)
        if record is None:
            raise EvaluationError(f"{bench_dir.name}: no prediction for sample {sample.id!r}")
        try:
            score = judge.score_sample(record, index)
        except (KeyError, ValueError) as exc:
            raise DataError(f"{bench_dir / PREDICTIONS}: sample {sample.id!r}: {exc}") from None
        record["score"], record["metric"] = score.value, score.metric
        ordered.append(record)
    records = ordered + list(by_id.values())
    main = bench_dir / PREDICTIONS
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if not main.exists() or main.read_text(encoding="utf-8") != text:
        write_jsonl(main, records)
    for shard in _prediction_files(bench_dir)[1:]:
        shard.unlink()
    return ordered
