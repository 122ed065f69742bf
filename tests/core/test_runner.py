"""The stage runner: order, skip-when-done, force, inputs from earlier stages or the config."""
import json

import pytest

from adamllm import runner
from adamllm.config import validate_config
from adamllm.io import read_jsonl, write_jsonl
from adamllm.runner import StageError, StageNotAvailable, run_pipeline


def test_unimplemented_stage_says_not_available(plugin_manager, tmp_path):
    cfg = validate_config({"output_dir": str(tmp_path), "stages": ["compose"]}, plugin_manager)
    with pytest.raises(StageNotAvailable, match="'compose' is not available yet"):
        run_pipeline(cfg, plugin_manager, echo=lambda _: None)


def test_stages_exchange_files_skip_when_done_and_rerun_with_force(plugin_manager, tmp_path, monkeypatch):
    calls = []

    def synthesize(ctx):
        calls.append("synthesize")
        n = write_jsonl(ctx.output_path(), [{"id": "1", "image": "a.png", "instruction": "q", "precise": "p",
                                             "informative": "i"}])
        return {"triplets": n}

    def filter_stage(ctx):
        calls.append("filter")
        triplets = read_jsonl(ctx.input_path("synthesize"))
        return {"verdicts": write_jsonl(ctx.output_path(), [{"id": t["id"], "verdict": "yes"} for t in triplets])}

    monkeypatch.setitem(runner.STAGE_FUNCTIONS, "synthesize", synthesize)
    monkeypatch.setitem(runner.STAGE_FUNCTIONS, "filter", filter_stage)
    cfg = validate_config({"output_dir": str(tmp_path), "stages": ["filter", "synthesize"]}, plugin_manager)
    summaries = run_pipeline(cfg, plugin_manager, echo=lambda _: None)
    assert calls == ["synthesize", "filter"]  # pipeline order, not config order
    assert summaries["filter"]["verdicts"] == 1
    assert json.loads((tmp_path / "filter" / "_done.json").read_text())["verdicts"] == 1
    run_pipeline(cfg, plugin_manager, echo=lambda _: None)
    assert calls == ["synthesize", "filter"]  # finished stages are skipped
    run_pipeline(cfg, plugin_manager, ["filter"], force=True, echo=lambda _: None)
    assert calls == ["synthesize", "filter", "filter"]


def test_stage_input_missing_or_from_config(plugin_manager, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setitem(runner.STAGE_FUNCTIONS, "filter", lambda ctx: seen.append(ctx.input_path("synthesize")) or {})
    cfg = validate_config({"output_dir": str(tmp_path / "o"), "stages": ["filter"]}, plugin_manager)
    with pytest.raises(StageError, match="run stage 'synthesize' first or set data.filter"):
        run_pipeline(cfg, plugin_manager, echo=lambda _: None)
    given = tmp_path / "mine.jsonl"
    given.write_text("")
    cfg = validate_config({"output_dir": str(tmp_path / "o"), "stages": ["filter"], "data": {"filter": str(given)}},
                          plugin_manager)
    run_pipeline(cfg, plugin_manager, echo=lambda _: None)
    assert seen == [given]


def test_unknown_stage_and_missing_section(plugin_manager, tmp_path, monkeypatch):
    cfg = validate_config({"output_dir": str(tmp_path)}, plugin_manager)
    with pytest.raises(StageError, match="unknown stage"):
        run_pipeline(cfg, plugin_manager, ["bake"], echo=lambda _: None)
    monkeypatch.setitem(runner.STAGE_FUNCTIONS, "train", lambda ctx: ctx.component("trainer"))
    with pytest.raises(StageError, match="needs a 'trainer' section"):
        run_pipeline(cfg, plugin_manager, ["train"], echo=lambda _: None)
