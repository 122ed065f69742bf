"""Evaluation: generate an answer per benchmark sample, score it, report.

``evaluate(adapter, benchmarks, out_dir, ...)`` writes, per benchmark, ``OUT/<benchmark>/``:

- ``predictions.jsonl``: one line per sample (``id``, ``benchmark``, ``prompt``, ``prediction``,
  ``label``, ``score``, ``metric``, the benchmark's fields, ``image`` when it is a path, ``error``
  when the backbone refused the sample), appended batch by batch, so a rerun skips finished samples;
- ``run.json``: what the predictions were made with (model, generation settings, data). A rerun with
  a different model or settings is refused (``force``/``restart_stale`` start over instead);

and ``OUT/report.json``, ``report.md`` and ``report.png`` (``adamllm.reports``).

Generation is greedy with each benchmark's ``max_new_tokens``; the prompt is the sample's with the
image placeholder in front (unless the prompt already holds one), after the backbone's evaluation
system message if it has one (``use_evaluation_settings``: the Qwen-VL families, as the reference
code prompts Qwen2-VL; the settings are recorded in ``run.json`` and the report). Data parallel: under
``accelerate launch`` (or torchrun) each process takes its share of the unfinished samples as the data
stages do (``adamllm.distributed.World``: every N-th one, round-robin) and appends to its own
``predictions.rank<N>.jsonl`` (``adamllm.sharding``); after a barrier the main process merges the
shards into ``predictions.jsonl`` in sample order, rescores
every sample with the requested scorer and writes the report. Scores in the report always come from
rescoring the stored predictions, so a rerun with another scorer reports that scorer's numbers.

Modules: ``loop`` (the runner), ``predictions`` (the prediction store: claim, resume, merge),
``report`` (per-benchmark summaries, domain
averages), ``stage`` (building benchmarks by name; the ``evaluate`` stage of ``adamllm run``),
``task`` (``EvalTask``, ``EvaluationError``).
"""
from ..distributed import per_process_device, process_state
from .loop import evaluate, evaluation_conversation, evaluation_settings, generate_batch, prediction_record
from .predictions import discard_predictions, merge_predictions, model_fingerprint
from .report import domain_averages
from .stage import build_task, expand_names, run_evaluate_stage
from .task import EvalTask, EvaluationError

__all__ = [
    "EvalTask", "EvaluationError", "build_task", "discard_predictions", "domain_averages", "evaluate",
    "evaluation_conversation", "evaluation_settings", "expand_names", "generate_batch", "merge_predictions",
    "model_fingerprint", "per_process_device", "prediction_record", "process_state", "run_evaluate_stage",
]
