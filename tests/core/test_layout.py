"""The run layout (``adamllm.layout.RunLayout``): the paths it names are the ones the stages write,
and the ones the readers (``adamllm inspect``'s card) read."""
import json

from adamllm.config import validate_config
from adamllm.layout import RunLayout
from adamllm.runner import run_pipeline
from adamllm.stages import STAGE_TABLE
from adamllm.testing.data import write_pairs


def _run(pm, tmp_path) -> RunLayout:
    pairs = write_pairs(tmp_path / "pairs", n=4)
    cfg = validate_config({"output_dir": str(tmp_path / "out"), "stages": ["synthesize", "filter", "compose"],
                           "data": {"synthesize": str(pairs)}, "synthesizer": {"type": "rules"},
                           "filter": {"type": "lexical"}, "composer": {"type": "adamllm"}}, pm)
    run_pipeline(cfg, pm, echo=lambda _: None)
    return RunLayout(tmp_path / "out")


def test_a_run_writes_where_its_layout_says(builtin_plugin_manager, tmp_path):
    layout = _run(builtin_plugin_manager, tmp_path)

    for row in STAGE_TABLE:  # the stage table names each stage's output; the layout puts it in its folder
        assert layout.output(row.name) == tmp_path / "out" / row.name / row.output
    made = {p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    named = {layout.triplets, layout.progress, layout.verdicts, layout.mix,
             *(f(stage) for stage in ("synthesize", "filter", "compose") for f in (layout.done, layout.stats))}
    assert {p.relative_to(tmp_path / "out").as_posix() for p in named} <= made
    assert not any(layout.running(stage).exists() for stage in ("synthesize", "filter", "compose"))
    assert [json.loads(line)["id"] for line in layout.triplets.read_text().splitlines()] == [
        json.loads(line)["id"] for line in layout.verdicts.read_text().splitlines()]
    assert json.loads(layout.done("synthesize").read_text())["fingerprint"]


def test_the_inspect_card_reads_the_files_the_layout_names(builtin_plugin_manager, tmp_path):
    from adamllm.card import stage_status

    layout = _run(builtin_plugin_manager, tmp_path)
    status = stage_status(layout.root)
    assert {stage: s["status"] for stage, s in status.items()} == {
        "synthesize": "done", "filter": "done", "compose": "done"}
    assert status["filter"]["summary"] == json.loads(layout.stats("filter").read_text())
