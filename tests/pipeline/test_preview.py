"""`adamllm run CONFIG --preview N`: the data stages on the first N pairs, in OUT-preview/, from scratch,
with the first triplets printed; the main run's folder is not touched."""
import json
import subprocess
import sys

from adamllm.testing.data import write_pairs


def run_cli(cwd, *args):
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                                                     **__import__("os").environ})


def _config(tmp_path, stages="[synthesize, train]"):
    write_pairs(tmp_path / "pairs", n=7)
    config = tmp_path / "run.yaml"
    config.write_text(f"output_dir: out\nstages: {stages}\n"
                      "data: {synthesize: pairs/image_caption_pairs.json}\nsynthesizer: {type: rules}\n")
    return config


def test_preview_runs_synthesis_on_the_first_n_pairs_only(tmp_path):
    config = _config(tmp_path)
    result = run_cli(tmp_path, "run", str(config), "--preview", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out-preview"
    triplets = [json.loads(line) for line in (out / "synthesize" / "triplets.jsonl").read_text().splitlines()]
    pairs = json.loads((tmp_path / "pairs" / "image_caption_pairs.json").read_text())
    assert [t["image"].rsplit("/", 1)[-1] for t in triplets] == [p["images"][0].rsplit("/", 1)[-1] for p in pairs[:3]]
    assert json.loads((out / "synthesize" / "stats.json").read_text())["pairs_read"] == 3
    assert not (out / "train").exists() and not (tmp_path / "out" / "synthesize").exists()
    first = triplets[0]
    assert f"  instruction: {first['instruction']}" in result.stdout
    assert f"  precise:     {first['precise']}" in result.stdout

    again = run_cli(tmp_path, "run", str(config), "--preview", "2")  # from scratch, the new N
    assert again.returncode == 0, again.stderr[-3000:]
    assert len((out / "synthesize" / "triplets.jsonl").read_text().splitlines()) == 2
    assert "already done" not in again.stdout


def test_preview_refuses_when_there_is_nothing_to_preview_or_the_synthesizer_is_not_tuned(tmp_path):
    config = _config(tmp_path, stages="[train]")
    result = run_cli(tmp_path, "run", str(config), "--preview", "2")
    assert result.returncode != 0 and "nothing to preview" in result.stderr
    config = _config(tmp_path, stages="[tune, synthesize]")
    result = run_cli(tmp_path, "run", str(config), "--preview", "2")
    assert result.returncode != 0 and "--stages tune" in result.stderr
    assert "Traceback" not in result.stderr


def test_preview_writes_the_judge_prompts_exactly_as_sent(tmp_path):
    """The consistency filter's prompts, as the engine gets them (BOS and few-shot prompt included)."""
    from adamllm.plugins.filtering.prompt import build_prompt, load_template
    from adamllm.records import TaskTriplet

    config = _config(tmp_path, stages="[synthesize, filter]")
    config.write_text(config.read_text() + "filter: {type: consistency, model: {type: causal_lm, model: judge, "
                                            "tiny: tiny}, max_new_tokens: 2}\n")
    result = run_cli(tmp_path, "run", str(config), "--preview", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out-preview"
    triplets = [TaskTriplet.model_validate_json(line) for line in (out / "synthesize" / "triplets.jsonl").read_text().splitlines()]
    sent = [json.loads(line) for line in (out / "filter" / "prompts.jsonl").read_text().splitlines()]
    template = load_template(None)
    assert [s["id"] for s in sent] == [t.id for t in triplets] and len(sent) == 2
    from transformers import AutoTokenizer

    from adamllm.plugins.filtering.consistency import bos_prefix

    bos = bos_prefix(AutoTokenizer.from_pretrained(tmp_path / "judge"))  # BOS in the text unless the tokenizer adds it
    assert [s["prompt"] for s in sent] == [bos + build_prompt(template, t) for t in triplets]
    assert "the first filter prompt, exactly as sent" in result.stdout
    assert not (out / "synthesize" / "prompts.jsonl").exists()  # the rules synthesizer prompts no model
