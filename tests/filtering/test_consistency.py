"""The ``consistency`` filter on real tiny judges: verdicts under both parsings, both engines,
refused prompts, its stats, and the FilterContract suite."""
import pytest

from adamllm.records import TaskTriplet
from adamllm.testing.stage_contract import FilterContract


def stage_context(tmp_path, **filter_options):
    """A real filter-stage context whose config selects ``consistency`` with these options."""
    from adamllm.config import validate_config
    from adamllm.registry import PluginManager
    from adamllm.runner import StageContext

    pm = PluginManager(strict=True)
    cfg = validate_config({"output_dir": str(tmp_path / "out"), "filter": {"type": "consistency", **filter_options}},
                          pm, base_dir=tmp_path)
    return StageContext("filter", cfg, pm, echo=lambda _: None)


PRECISE = ("Red", "cat dog", "Why is the sky", "12345", "zebra", "Hello there friend")


def triplets(n, long_one=None):
    out = [TaskTriplet(id=f"t{i}", image="x.png", instruction=f"What colour is shape {i}?" + " Really?" * i,
                       precise=PRECISE[i % len(PRECISE)], informative="The shape is red. " * (i + 1))
           for i in range(n)]
    if long_one is not None:
        out[long_one] = out[long_one].model_copy(update={"informative": "word " * 2000})
    return out


@pytest.mark.parametrize("parsing,verdict", [("legacy", "other"), ("normalized", "yes")])
def test_yes_dot_is_dropped_by_legacy_and_kept_by_normalized(tmp_path, yes_dot_judge, parsing, verdict):
    ctx = stage_context(tmp_path, parsing=parsing, model={"type": "causal_lm", "model": str(yes_dot_judge)})
    judge = ctx.component()
    verdicts = judge.judge(triplets(3), ctx)
    assert [(v.id, v.verdict, v.raw) for v in verdicts] == [(f"t{i}", verdict, " Yes.") for i in range(3)]
    stats = judge.stats
    assert {k: stats[k] for k in ("judged", "parsing", "engine", "parsings_differ", "parsings_differ_examples",
                                  "refused")} == {"judged": 3, "parsing": parsing, "engine": "generate_batch",
                                                  "parsings_differ": 3, "parsings_differ_examples": [" Yes."],
                                                  "refused": 0}
    assert stats["generation_seconds"] > 0 and stats["triplets_per_s"] > 0


def test_a_clean_yes_is_kept_by_legacy(tmp_path, yes_judge):
    ctx = stage_context(tmp_path, model={"type": "causal_lm", "model": str(yes_judge)})
    judge = ctx.component()
    assert [(v.verdict, v.raw) for v in judge.judge(triplets(2), ctx)] == [("yes", " Yes")] * 2
    assert judge.stats["parsings_differ"] == 0


def test_a_prompt_too_long_for_the_judge_is_other_and_counted(tmp_path, yes_judge):
    ctx = stage_context(tmp_path, model={"type": "causal_lm", "model": str(yes_judge), "max_length": 1200})
    judge = ctx.component()
    verdicts = judge.judge(triplets(3, long_one=1), ctx)
    assert [(v.verdict, v.raw) for v in verdicts] == [("yes", " Yes"), ("other", ""), ("yes", " Yes")]
    assert judge.stats["refused"] == 1 and judge.problems[0].startswith("triplet t1: ")
    assert judge.stats["refused_examples"] == judge.problems


@pytest.mark.parametrize("long_one", [None, 2])
def test_generate_batch_writes_what_the_engine_writes(tmp_path, tiny_checkpoints, long_one):
    """A random judge writes a different junk text per short prompt: both engines must write the same."""
    model = {"type": "causal_lm", "model": str(tiny_checkpoints("causal_lm")), "max_length": 300}
    (tmp_path / "short.txt").write_text("{instruction} {informative} {precise}")
    answers = {}
    for engine in ("engine", "generate_batch"):
        ctx = stage_context(tmp_path, engine=engine, batch_size=2, model=model, prompt="short.txt")
        judge = ctx.component()
        answers[engine] = [(v.id, v.verdict, v.raw) for v in judge.judge(triplets(5, long_one), ctx)]
        assert judge.stats["refused"] == (0 if long_one is None else 1)
    assert answers["engine"] == answers["generate_batch"]
    assert len({raw for _, _, raw in answers["engine"]}) >= 3


def test_a_vllm_judge_generates_through_vllm_and_refuses_continuous_batching(tmp_path, tiny_checkpoints):
    """``engine: vllm`` in the judge's section: the filter's default engine becomes vLLM (through
    generate_from_text); transformers' continuous batching named with it is a clear error, before
    any generation (so this runs without vLLM installed)."""
    from adamllm.plugins.filtering.consistency import judge_engine

    model = {"type": "causal_lm", "model": str(tiny_checkpoints("causal_lm")), "engine": "vllm"}
    judge = stage_context(tmp_path, model=model).component()
    adapter = judge.adapter(stage_context(tmp_path, model=model))
    assert adapter.config.engine == "vllm" and judge.stats["engine"] == "vllm"
    assert judge_engine("engine", adapter) == "vllm"
    ctx = stage_context(tmp_path, model=model, engine="generate_batch")
    with pytest.raises(ValueError, match="filter.engine: generate_batch .* engine: vllm"):
        ctx.component().adapter(ctx)
    plain = {"type": "causal_lm", "model": str(tiny_checkpoints("causal_lm"))}
    judge = stage_context(tmp_path, model=plain).component()
    judge.adapter(stage_context(tmp_path, model=plain))
    assert judge.stats["engine"] == "generate_batch"


class TestConsistencyContract(FilterContract):
    component = "consistency"
    options = {"model": {"type": "causal_lm", "model": "judge", "tiny": "tiny"}, "batch_size": 3}
