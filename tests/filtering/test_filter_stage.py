"""``adamllm run`` with stages [synthesize, filter]: the ``rules`` synthesizer, then the
``consistency`` filter on a tiny judge rigged to write " Yes." (so every verdict is known), with
a gold file; then the same run under the default legacy parsing, which drops every " Yes."."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adamllm.pairs import read_conversation_pairs
from adamllm.plugins.filtering.parsing import parse_legacy, parsings_differ
from adamllm.testing.data import write_pairs

CONFIG = """\
output_dir: out
stages: [synthesize, filter]
data: {{synthesize: pairs/image_caption_pairs.json}}
synthesizer: {{type: rules}}
filter: {{type: consistency, parsing: {parsing}, batch_size: 4, gold: gold.jsonl,
          model: {{type: causal_lm, model: {judge}}}}}
"""


def run_cli(*args, cwd: Path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=cwd)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow  # three `adamllm run` subprocesses
def test_synthesize_then_filter_writes_verdicts_and_stats(tmp_path, yes_dot_judge):
    pairs = write_pairs(tmp_path / "pairs", n=6)
    ids = [pair.id for _, pair in read_conversation_pairs(pairs)]
    gold = [(ids[0], "yes"), (ids[1], "no"), (ids[2], "open"), ("not-synthesized", "yes")]
    (tmp_path / "gold.jsonl").write_text("".join(json.dumps({"id": i, "label": g}) + "\n" for i, g in gold))
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG.format(parsing="normalized", judge=yes_dot_judge))

    first = run_cli("run", str(config), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    out = tmp_path / "out"
    triplet_ids = [t["id"] for t in lines(out / "synthesize" / "triplets.jsonl")]
    assert triplet_ids == ids  # the colour rule fires on every fixture caption
    verdicts = lines(out / "filter" / "verdicts.jsonl")
    assert verdicts == [{"id": i, "verdict": "yes", "raw": " Yes."} for i in ids]
    stats = json.loads((out / "filter" / "stats.json").read_text())
    assert (stats["triplets"], stats["verdicts"], stats["keep_rate"]) == (6, {"yes": 6}, 1.0)
    assert (stats["judged"], stats["parsing"], stats["engine"], stats["refused"]) == (6, "normalized", "generate_batch", 0)
    assert stats["parsings_differ"] == sum(parsings_differ(v["raw"]) for v in verdicts) == 6
    assert stats["gold"]["compared"] == 3 and stats["gold"]["missing"] == 1
    assert stats["gold"]["agreement"] == 0.3333  # everything predicted yes; one of the three is gold yes
    assert stats["gold"]["confusion"]["no"] == {"yes": 1, "no": 0, "open": 0, "other": 0}

    again = run_cli("run", str(config), cwd=tmp_path)
    assert again.returncode == 0 and "[filter] already done" in again.stdout, again.stdout + again.stderr

    config.write_text(CONFIG.format(parsing="legacy", judge=yes_dot_judge))
    legacy = run_cli("run", str(config), cwd=tmp_path)
    assert legacy.returncode == 0, legacy.stderr[-3000:]
    assert "[synthesize] already done" in legacy.stdout
    verdicts = lines(out / "filter" / "verdicts.jsonl")
    assert verdicts == [{"id": i, "verdict": parse_legacy(" Yes."), "raw": " Yes."} for i in ids]
    assert {v["verdict"] for v in verdicts} == {"other"}
    stats = json.loads((out / "filter" / "stats.json").read_text())
    assert (stats["verdicts"], stats["keep_rate"], stats["parsing"]) == ({"other": 6}, 0.0, "legacy")
    assert stats["gold"]["agreement"] == 0.0
