"""``adamllm run`` with stages [synthesize] and the ``rules`` synthesizer, end to end in a subprocess:
on the example domain's declared pairs, on a pretty-printed JSON-array pairs file, and a streaming
check (the stage's peak memory does not grow with the number of pairs)."""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from adamllm.pairs import read_conversation_pairs
from adamllm.testing.data import write_pairs

NO_RULE_CAPTION = "Lorem ipsum dolor amet consectetur."


def run_cli(*args, cwd: Path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_run(config: Path, expected_ids: list[str], pairs_read: int):
    """Run, check triplets and stats, rerun (already done), rerun into another folder (same bytes)."""
    first = run_cli("run", str(config), cwd=config.parent)
    assert first.returncode == 0, first.stderr[-3000:]
    out = config.parent / "out" / "synthesize"
    triplets = lines(out / "triplets.jsonl")
    ids = [t["id"] for t in triplets]
    assert ids == expected_ids and len(set(ids)) == len(ids)
    assert all(t["rule"] in ("colour", "count", "object", "subject") and Path(t["image"]).is_absolute()
               and t["informative"].rstrip(".").endswith(t["precise"]) for t in triplets)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["pairs_read"] == pairs_read and stats["triplets"] == len(expected_ids)
    assert stats["no_triplet"] == pairs_read - len(expected_ids)
    assert sum(stats["by_rule"].values()) == len(expected_ids) and stats["no_rule"] == stats["no_triplet"]

    again = run_cli("run", str(config), cwd=config.parent)
    assert again.returncode == 0 and "[synthesize] already done" in again.stdout, again.stdout + again.stderr
    assert lines(out / "triplets.jsonl") == triplets

    other = run_cli("run", str(config), "output_dir=out2", cwd=config.parent)
    assert other.returncode == 0, other.stderr[-3000:]
    assert (config.parent / "out2" / "synthesize" / "triplets.jsonl").read_bytes() == \
        (out / "triplets.jsonl").read_bytes()
    return triplets


def test_rules_on_the_example_domains_declared_pairs(tmp_path):
    import adamllm_example_domain

    source = Path(adamllm_example_domain.__file__).parent / "data" / "image_caption_pairs.jsonl"
    pair_ids = [p.id for _, p in read_conversation_pairs(source)]
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: out\nstages: [synthesize]\ndomain: {type: shapes}\nsynthesizer: {type: rules}\n")
    triplets = check_run(config, pair_ids, pairs_read=len(pair_ids))
    assert len(triplets) == 4


def test_rules_on_a_json_array_pairs_file(tmp_path):
    path = write_pairs(tmp_path / "pairs", n=8, seed=5, as_json_array=True)
    records = json.loads(path.read_text())
    no_rule = json.loads(json.dumps(records[0]))
    no_rule["messages"][1]["content"] = NO_RULE_CAPTION
    records.insert(3, no_rule)
    path.write_text(json.dumps(records, indent=2) + "\n")
    pairs = [p for _, p in read_conversation_pairs(path)]
    assert len({p.id for p in pairs}) == 9
    config = tmp_path / "run.yaml"
    config.write_text(textwrap.dedent("""\
        output_dir: out
        seed: 3
        stages: [synthesize]
        data: {synthesize: pairs/image_caption_pairs.json}
        synthesizer: {type: rules, batch_size: 4}
        """))
    check_run(config, [p.id for p in pairs if p.caption != NO_RULE_CAPTION], pairs_read=9)


# -- streaming --------------------------------------------------------------------------------
MEASURE = textwrap.dedent("""\
    import json, resource, subprocess, sys, time
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "adamllm.cli", "run", sys.argv[1]], capture_output=True, text=True)
    print(json.dumps({"rc": done.returncode, "seconds": time.perf_counter() - start, "stderr": done.stderr[-2000:],
                      "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
    """)


def write_many_pairs(folder: Path, n: int) -> Path:
    """n JSONL pairs, all pointing at one small image, with varied captions."""
    from PIL import Image

    folder.mkdir(parents=True)
    Image.new("RGB", (16, 16), "red").save(folder / "one.png")
    colours, shapes = ["red", "green", "blue", "yellow", "white"], ["square", "circle", "star", "triangle"]
    path = folder / "pairs.jsonl"
    with path.open("w") as handle:
        for i in range(n):
            caption = (f"A {colours[i % 5]} {shapes[i % 4]} with {i % 9 + 2} dots, number {i}, "
                       f"on a plain background.")
            handle.write(json.dumps({"id": f"p{i}", "images": ["one.png"], "messages": [
                {"role": "user", "content": "<image>Describe the image."},
                {"role": "assistant", "content": caption}]}) + "\n")
    return path


def peak_rss(tmp_path: Path, n: int) -> dict:
    """Peak RSS of one ``adamllm run`` on n pairs, measured in a fresh child that runs only it."""
    root = tmp_path / f"n{n}"
    write_many_pairs(root / "pairs", n)
    config = root / "run.yaml"
    config.write_text(f"output_dir: {root / 'out'}\nstages: [synthesize]\n"
                      f"data: {{synthesize: {root / 'pairs' / 'pairs.jsonl'}}}\nsynthesizer: {{type: rules}}\n")
    measured = subprocess.run([sys.executable, "-c", MEASURE, str(config)], capture_output=True, text=True,
                              timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    assert measured.returncode == 0, measured.stderr[-3000:]
    result = json.loads(measured.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0, result["stderr"]
    stats = json.loads((root / "out" / "synthesize" / "stats.json").read_text())
    assert stats["pairs_read"] == n and stats["triplets"] == n
    return result


def test_synthesize_streams_its_pairs(tmp_path):
    # JSONL on purpose: core reads a JSON array's text whole (adamllm.io._array_rows). About 4 s here
    # (20k pairs: ~3.5 s), so not marked slow.
    started = time.perf_counter()
    small, large = peak_rss(tmp_path, 1_000), peak_rss(tmp_path, 20_000)
    print(f"peak RSS: 1k pairs {small['maxrss_kb']} KiB in {small['seconds']:.1f}s, "
          f"20k pairs {large['maxrss_kb']} KiB in {large['seconds']:.1f}s "
          f"(total {time.perf_counter() - started:.1f}s)")
    assert large["maxrss_kb"] <= 1.2 * small["maxrss_kb"], (small, large)
