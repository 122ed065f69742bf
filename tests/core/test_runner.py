"""The stage runner: order, inputs from earlier stages or the config, fingerprints decide reruns."""
import json

import pytest
from pydantic import BaseModel, ConfigDict

from adamllm import hookimpl
from adamllm.config import validate_config
from adamllm.io import read_records, write_jsonl
from adamllm.records import TaskTriplet, Verdict
from adamllm.runner import StageError, run_pipeline
from adamllm.specs import FilterSpec, SynthesizerSpec
from adamllm.testing.data import write_pairs

CALLS: list[tuple[str, bool]] = []


class SynthOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = "What is it?"


class Synth:
    def __init__(self, config):
        self.config = config

    def synthesize(self, pairs, ctx):
        CALLS.append(("synthesize", ctx.force))
        return [TaskTriplet(id=p.id, image=p.image, instruction=self.config.question, precise="x",
                            informative=p.caption) for p in pairs]


class Judge:
    def judge(self, triplets, ctx):
        CALLS.append(("filter", ctx.force))
        return [Verdict(id=t.id, verdict="yes") for t in triplets]


class Components:
    @hookimpl
    def adamllm_synthesizers(self):
        return [SynthesizerSpec(name="s", factory=Synth, config=SynthOptions)]

    @hookimpl
    def adamllm_filters(self):
        return [FilterSpec(name="f", factory=Judge)]


@pytest.fixture
def pm(plugin_manager, register_plugin):
    CALLS.clear()
    register_plugin(Components(), "components")
    return plugin_manager


def config(pm, tmp_path, **extra):
    pairs = tmp_path / "pairs" / "image_caption_pairs.json"
    if not pairs.exists():
        write_pairs(tmp_path / "pairs", n=3)
    data = {"output_dir": str(tmp_path / "out"), "stages": ["filter", "synthesize"],
            "data": {"synthesize": str(pairs)}, "synthesizer": {"type": "s"}, "filter": {"type": "f"}, **extra}
    return validate_config(data, pm)


def quiet(_):
    pass


def test_stages_run_in_pipeline_order_and_exchange_files(pm, tmp_path):
    summaries = run_pipeline(config(pm, tmp_path), pm, echo=quiet)
    assert [c for c, _ in CALLS] == ["synthesize", "filter"]  # pipeline order, not config order
    assert summaries["filter"]["verdicts"] == {"yes": 3}
    done = json.loads((tmp_path / "out" / "filter" / "_done.json").read_text())
    assert done["triplets"] == 3 and "fingerprint" in done
    assert not (tmp_path / "out" / "filter" / "_running.json").exists()
    triplets = read_records(tmp_path / "out" / "synthesize" / "triplets.jsonl", TaskTriplet)
    assert [v.id for v in read_records(tmp_path / "out" / "filter" / "verdicts.jsonl", Verdict)] == [t.id for t in triplets]


def test_unchanged_skip_changed_rerun_with_the_fields_named(pm, tmp_path):
    run_pipeline(config(pm, tmp_path), pm, echo=quiet)
    CALLS.clear()
    said = []
    run_pipeline(config(pm, tmp_path), pm, echo=said.append)
    assert CALLS == [] and sum("already done" in s for s in said) == 2
    said.clear()
    run_pipeline(config(pm, tmp_path, synthesizer={"type": "s", "question": "Which colour?"}), pm, echo=said.append)
    assert CALLS == [("synthesize", True), ("filter", True)]  # from scratch, and every later stage too
    assert any("synthesizer.question: What is it? -> Which colour?" in s for s in said), said
    assert any("[filter] rerunning from scratch" in s and "stage 'synthesize' ran before it" in s for s in said)
    triplets = read_records(tmp_path / "out" / "synthesize" / "triplets.jsonl", TaskTriplet)
    assert len(triplets) == 3 and {t.instruction for t in triplets} == {"Which colour?"}  # no stale line kept


def test_changed_input_file_reruns(pm, tmp_path):
    run_pipeline(config(pm, tmp_path), pm, echo=quiet)
    pairs = tmp_path / "pairs" / "image_caption_pairs.json"
    records = json.loads(pairs.read_text())[:2]
    pairs.write_text(json.dumps(records, indent=2))
    CALLS.clear()
    said = []
    run_pipeline(config(pm, tmp_path), pm, echo=said.append)
    assert [c for c, _ in CALLS] == ["synthesize", "filter"]
    assert any(f"input {pairs} changed" in s for s in said), said
    assert len(read_records(tmp_path / "out" / "filter" / "verdicts.jsonl")) == 2


def test_interrupted_stage_resumes_if_unchanged_else_starts_over(pm, tmp_path):
    cfg = config(pm, tmp_path, stages=["synthesize"])
    run_pipeline(cfg, pm, echo=quiet)
    folder = tmp_path / "out" / "synthesize"
    fingerprint = json.loads((folder / "_done.json").read_text())["fingerprint"]
    (folder / "_done.json").unlink()  # as if killed before it finished
    (folder / "_running.json").write_text(json.dumps(fingerprint))
    CALLS.clear()
    said = []
    run_pipeline(cfg, pm, echo=said.append)
    assert "[synthesize] resuming" in said and CALLS == []  # every pair was already done: nothing redone
    (folder / "_done.json").unlink()
    stale = {**fingerprint, "config": {**fingerprint["config"], "synthesizer.question": "old"}}
    (folder / "_running.json").write_text(json.dumps(stale))
    said.clear()
    run_pipeline(cfg, pm, echo=said.append)
    assert CALLS == [("synthesize", True)]
    assert any("starting over" in s and "synthesizer.question: old -> What is it?" in s for s in said), said


def test_force_reruns_finished_stages(pm, tmp_path):
    cfg = config(pm, tmp_path)
    run_pipeline(cfg, pm, echo=quiet)
    CALLS.clear()
    run_pipeline(cfg, pm, ["filter"], force=True, echo=quiet)
    assert CALLS == [("filter", True)]


def test_stage_input_missing_or_from_config(pm, tmp_path):
    cfg = config(pm, tmp_path, stages=["filter"])
    with pytest.raises(StageError, match="run stage 'synthesize' first or set data.filter"):
        run_pipeline(cfg, pm, echo=quiet)
    given = tmp_path / "mine.jsonl"
    write_jsonl(given, [TaskTriplet(id="a", image="a.png", instruction="q", precise="p", informative="i")])
    cfg = config(pm, tmp_path, stages=["filter"], data={"filter": str(given)})
    run_pipeline(cfg, pm, echo=quiet)
    assert [v.id for v in read_records(tmp_path / "out" / "filter" / "verdicts.jsonl", Verdict)] == ["a"]


def test_unknown_stage_and_missing_section(pm, tmp_path):
    cfg = validate_config({"output_dir": str(tmp_path)}, pm)
    with pytest.raises(StageError, match="unknown stage"):
        run_pipeline(cfg, pm, ["bake"], echo=quiet)
    for stage, section in (("train", "trainer"), ("compose", "composer"), ("synthesize", "synthesizer")):
        with pytest.raises(StageError, match=f"needs a '{section}' section"):
            run_pipeline(cfg, pm, [stage], echo=quiet)


def test_a_file_named_by_an_option_is_part_of_the_fingerprint(tmp_path):
    """Editing a filter's prompt file is a change (its path alone is not enough), and so is
    retraining the model in a model folder an option names; a folder that `tiny:` builds on first
    use is left out (it must not look changed afterwards), and other folders are not hashed."""
    from types import SimpleNamespace

    from pydantic import BaseModel

    from adamllm.fingerprint import changes, stage_fingerprint
    from adamllm.stages import stage

    class Options(BaseModel):
        prompt: str
        model: str
        notes: str
        tiny: str | None = None

    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Label: {precise}")
    (tmp_path / "model").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "model" / "model.safetensors").write_text("x")

    def fingerprint(tiny=None):
        options = Options(prompt=str(prompt), model=str(tmp_path / "model"), notes=str(tmp_path / "notes"), tiny=tiny)
        config = SimpleNamespace(seed=0, data={}, filter=SimpleNamespace(type="consistency", options=options))
        return stage_fingerprint(config, stage("filter"), [])

    before = fingerprint()
    assert list(before["inputs"]) == [str(prompt), str(tmp_path / "model")]
    (tmp_path / "notes" / "n.txt").write_text("not an input")
    assert changes(before, fingerprint()) == []
    (tmp_path / "model" / "model.safetensors").write_text("retrained")
    assert changes(before, fingerprint()) == [f"input {tmp_path / 'model'} changed"]
    assert list(fingerprint(tiny="small")["inputs"]) == [str(prompt)]
    before = fingerprint()
    prompt.write_text("Verdict: {precise}")
    assert changes(before, fingerprint()) == [f"input {prompt} changed"]


def test_a_copied_run_folder_reuses_its_finished_stages(tmp_path):
    """Fingerprints write paths inside the config's folder relative to it: the folder copied
    elsewhere (config, inputs and run) is the same run, and nothing is recomputed; a changed input
    in the copy still reruns what depends on it."""
    import shutil
    import subprocess
    import sys

    from adamllm.testing.data import write_pairs

    first = tmp_path / "first"
    write_pairs(first / "pairs", n=5)
    (first / "run.yaml").write_text(
        "output_dir: out\nstages: [synthesize, filter, compose]\n"
        "data: {synthesize: pairs/image_caption_pairs.json}\n"
        "synthesizer: {type: rules}\nfilter: {type: none}\ncomposer: {type: adamllm}\n")

    def run(folder):
        result = subprocess.run([sys.executable, "-m", "adamllm.cli", "run", str(folder / "run.yaml")],
                                capture_output=True, text=True, timeout=300,
                                env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    run(first)
    mix = (first / "out" / "compose" / "mix.jsonl").read_bytes()
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(first, copy)
    shutil.rmtree(first)
    again = run(copy)
    assert again.count("already done") == 3, again
    assert (copy / "out" / "compose" / "mix.jsonl").read_bytes() == mix
    pairs = copy / "pairs" / "image_caption_pairs.json"
    pairs.write_text(pairs.read_text().replace("plain background", "plain grey background", 1))
    changed = run(copy)
    assert "[synthesize] rerunning from scratch" in changed and "$CONFIG_DIR/pairs/image_caption_pairs.json" in changed


def test_moving_generation_to_vllm_does_not_tune_or_train_again(tmp_path):
    """``engine`` / ``vllm`` of a backbone section choose how it generates: the stages that train
    (tune, train) leave them out of their fingerprints, the stages that generate do not."""
    from adamllm.config import validate_config
    from adamllm.fingerprint import changes, stage_fingerprint
    from adamllm.registry import PluginManager
    from adamllm.stages import stage

    def fingerprints(**generation):
        model = {"type": "qwen2_vl", "model": "base", "tiny": "tiny", **generation}
        cfg = validate_config({"output_dir": "out", "backbone": model, "trainer": {"type": "sft"},
                               "synthesizer": {"type": "adamllm", "model": model}},
                              PluginManager(strict=True), base_dir=tmp_path)
        return {name: stage_fingerprint(cfg, stage(name), []) for name in ("tune", "train", "synthesize", "evaluate")}

    plain, on_vllm = fingerprints(), fingerprints(engine="vllm", vllm={"gpu_memory_utilization": 0.5})
    assert changes(plain["tune"], on_vllm["tune"]) == [] and changes(plain["train"], on_vllm["train"]) == []
    assert changes(plain["synthesize"], on_vllm["synthesize"]) and changes(plain["evaluate"], on_vllm["evaluate"])
    assert changes(plain["train"], fingerprints(max_length=512)["train"])  # what the model is still counts
