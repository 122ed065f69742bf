"""`adamllm run` synthesize -> filter -> compose with the built-in `rules` synthesizer and
`adamllm` composer, and the mix read the way LLaMA-Factory reads a sharegpt dataset.

The filter is a small test plugin (found through an entry point, as pip would install it) that
judges by colour, so the run has every filter outcome: `yes`, `no`, `open`, and a pair with no
triplet at all (its caption is too short for the rules synthesizer).
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from adamllm.io import write_jsonl
from adamllm.plugins.compose.composer import AdamllmComposer, ComposerConfig
from adamllm.plugins.compose.templates import POOLS
from adamllm.records import ImageCaptionPair, TaskTriplet, Verdict
from adamllm.testing.distributions import fake_distribution

FILTER_PLUGIN = '''
from adamllm import hookimpl
from adamllm.records import Verdict
from adamllm.specs import FilterSpec


class ColourFilter:
    """no for purple, open for green, yes otherwise (by the caption quoted in the informative answer)."""

    def judge(self, triplets, ctx):
        return [Verdict(id=t.id, verdict="no" if "purple" in t.informative else
                        "open" if "green" in t.informative else "yes") for t in triplets]


@hookimpl
def adamllm_filters():
    return [FilterSpec(name="compose_test_colour", factory=ColourFilter, description="test")]
'''

#: id -> (caption instruction in the user turn, caption)
PAIRS = {
    "p0": ("Describe the image.", "A red square on a plain background."),
    "p1": ("What is shown here?", "Three blue circles lie on a wooden table."),
    "p2": ("Describe the image.", "Tiny dot."),                                     # too short: no triplet
    "p3": ("Describe the image.", "The green triangle sits beside a small box."),    # open
    "p4": ("Describe the image.", "A purple star on a white background."),          # no
    "p5": ("", "An orange circle in the middle of a grey field."),                  # no own instruction
}

#: What LLaMA-Factory's dataset_info.json says of a sharegpt dataset with OpenAI-style messages.
DATASET_INFO = {"adamllm_mix": {
    "file_name": "mix.jsonl", "formatting": "sharegpt",
    "columns": {"messages": "messages", "images": "images"},
    "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
             "system_tag": "system"}}}


def write_pairs_file(folder: Path) -> Path:
    from PIL import Image

    (folder / "images").mkdir(parents=True)
    lines = []
    for i, (pid, (instruction, caption)) in enumerate(PAIRS.items()):
        Image.new("RGB", (32 + 4 * i, 32), "white").save(folder / "images" / f"{pid}.png")
        lines.append({"id": pid, "images": [f"images/{pid}.png"],
                      "messages": [{"role": "user", "content": "<image>" + instruction},
                                   {"role": "assistant", "content": caption}]})
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs on the same pairs: seed 0 twice (two output folders) and seed 1; the rules
    synthesizer's own seed is pinned, so only the composer's choices follow the run seed."""
    root = tmp_path_factory.mktemp("compose_run")
    site = root / "site"
    fake_distribution(site, "adamllm-compose-test", modules={"compose_test_filter": FILTER_PLUGIN},
                      entry_points={"adamllm-compose-test": "compose_test_filter"})
    pairs = write_pairs_file(root / "pairs")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "ADAMLLM_STRICT_PLUGINS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    outs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        config = root / f"{name}.yaml"
        config.write_text(textwrap.dedent(f"""\
            output_dir: out_{name}
            seed: {seed}
            stages: [synthesize, filter, compose]
            data: {{synthesize: {pairs}}}
            synthesizer: {{type: rules, seed: 0}}
            filter: {{type: compose_test_colour}}
            composer: {{type: adamllm}}
            """))
        result = subprocess.run([sys.executable, "-m", "adamllm.cli", "run", str(config)], capture_output=True,
                                text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        outs[name] = root / f"out_{name}"
    return outs


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def read_like_llamafactory(folder: Path, info: dict | None = None) -> list[dict]:
    """The checks LLaMA-Factory's sharegpt converter makes, from the dataset_info.json entry in
    ``folder`` (its ``dataset_dir``; ``info`` is written there first when given): the mapped
    columns exist, roles alternate user/assistant from the first turn (no system turn is written)
    and end on the assistant, the <image> placeholders match the images, which exist under its
    ``media_dir`` (by default ``dataset_dir``: LLaMA-Factory joins the two)."""
    if info is not None:
        (folder / "dataset_info.json").write_text(json.dumps(info))
    entry = json.loads((folder / "dataset_info.json").read_text())["adamllm_mix"]
    assert entry["formatting"] == "sharegpt"
    columns, tags = entry["columns"], entry["tags"]
    records = read_lines(folder / entry["file_name"])
    for record in records:
        messages, images = record[columns["messages"]], record[columns["images"]]
        roles = [m[tags["role_tag"]] for m in messages]
        expected = [tags["user_tag"], tags["assistant_tag"]] * (len(messages) // 2)
        assert len(messages) % 2 == 0 and roles == expected, roles
        contents = [m[tags["content_tag"]] for m in messages]
        assert all(isinstance(c, str) and c.strip() for c in contents)
        assert sum(c.count("<image>") for c in contents) == len(images) == 1
        assert contents[0].startswith("<image>")
        assert all(os.path.isfile(os.path.join(folder, image)) for image in images)
    return records


def test_the_run_composes_every_branch(runs):
    out = runs["a"]
    triplets = {t["id"]: t for t in read_lines(out / "synthesize" / "triplets.jsonl")}
    assert sorted(triplets) == ["p0", "p1", "p3", "p4", "p5"]
    verdicts = {v["id"]: v["verdict"] for v in read_lines(out / "filter" / "verdicts.jsonl")}
    assert verdicts == {"p0": "yes", "p1": "yes", "p3": "open", "p4": "no", "p5": "yes"}
    mix = read_lines(out / "compose" / "mix.jsonl")
    assert [m["id"] for m in mix] == ["p0", "p1", "p3", "p4", "p5"]  # p2 had no triplet: dropped
    assert [len(m["messages"]) for m in mix] == [4, 4, 2, 2, 4]
    for record in mix:
        pid = record["id"]
        instruction, caption = PAIRS[pid]
        users = [m["content"].removeprefix("<image>") for m in record["messages"] if m["role"] == "user"]
        replies = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
        # the pair image pairs/images/p0.png, in the mix's own images/ folder, named relative to the mix
        assert caption in replies and record["images"] == [f"images/images/{pid}.png"]
        assert (out / "compose" / record["images"][0]).read_bytes() == (out.parent / "pairs" / "images" /
                                                                       f"{pid}.png").read_bytes()
        if instruction:
            assert users[replies.index(caption)] == instruction
        if len(replies) == 2:  # the rules synthesizer's explanations end in "so"/"therefore": branch 1
            task = next((u, r) for u, r in zip(users, replies) if r != caption)
            fields = {"question": triplets[pid]["instruction"], "answer": triplets[pid]["informative"]}
            assert task in {t.fill(**fields) for pool in POOLS["qa"].values() for t in pool}
    stats = json.loads((out / "compose" / "stats.json").read_text())
    assert stats["examples"] == 5 and stats["images"] == 6 and stats["dropped_no_triplet"] == 1
    assert stats["with_task"] == 3 and stats["caption_only"] == 2 and stats["informative_only"] == 3
    assert stats["not_kept_by_verdict"] == {"no": 1, "open": 1} and stats["default_caption_instruction"] == 1


def test_same_seed_same_bytes_other_seed_other_choices(runs):
    a, b, c = (runs[k] for k in "abc")
    for stage, name in (("synthesize", "triplets.jsonl"), ("filter", "verdicts.jsonl")):
        assert (a / stage / name).read_bytes() == (c / stage / name).read_bytes()  # the inputs agree
    assert (a / "compose" / "mix.jsonl").read_bytes() == (b / "compose" / "mix.jsonl").read_bytes()
    first, other = read_lines(a / "compose" / "mix.jsonl"), read_lines(c / "compose" / "mix.jsonl")
    assert [m["id"] for m in first] == [m["id"] for m in other]
    assert sum(x != y for x, y in zip(first, other)) >= 2


def test_the_mix_reads_as_a_llamafactory_sharegpt_dataset(runs):
    """compose writes the dataset_info.json entry itself (format llamafactory, a default one)."""
    assert json.loads((runs["a"] / "compose" / "dataset_info.json").read_text()) == DATASET_INFO
    assert len(read_like_llamafactory(runs["a"] / "compose")) == 5


def test_a_two_stage_mix_reads_as_sharegpt_too(tmp_path):
    from PIL import Image

    pairs, triplets, verdicts = [], {}, {}
    for i, verdict in enumerate(["yes", "no", "yes"]):
        image = tmp_path / f"{i}.png"
        Image.new("RGB", (16, 16), "red").save(image)
        pairs.append(ImageCaptionPair(id=f"q{i}", image=str(image), caption=f"A red tile {i}.", instruction=None))
        triplets[f"q{i}"] = TaskTriplet(id=f"q{i}", image=str(image), instruction="What colour is the tile?",
                                        precise="Red", informative="The tile is red all over.")
        verdicts[f"q{i}"] = Verdict(id=f"q{i}", verdict=verdict)
    composer = AdamllmComposer(ComposerConfig(two_stage=True))
    ctx = SimpleNamespace(config=SimpleNamespace(seed=0))
    write_jsonl(tmp_path / "mix.jsonl", composer.compose(iter(pairs), triplets, verdicts, ctx))
    records = read_like_llamafactory(tmp_path, DATASET_INFO)
    assert [(r["id"], r["stage"]) for r in records] == [("q0/caption", 1), ("q0/task", 2), ("q1/caption", 1),
                                                        ("q2/caption", 1), ("q2/task", 2)]
