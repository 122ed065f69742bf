"""The generated files read through the project's own readers: seeds, pairs, benchmarks."""
import json

from adamllm.pairs import read_pairs
from adamllm.plugins.synthesis.seed import read_seeds
from adamllm.plugins.synthesis.tuning import seed_layout


def test_seed_folder_reads_with_the_seed_reader_exactly(fast_world):
    layout = seed_layout(fast_world.general)  # the data.tune folder as the tune stage reads it
    data = read_seeds(layout["captions"], layout["precise"], layout["informative"], layout["image_root"])
    assert len(data.records) == 160
    assert data.stats["seed_images"] == data.stats["captioned_images"] == 160
    for key in ("duplicate_captions", "no_precise_pair", "no_informative_pair", "precise_without_caption",
                "informative_without_caption"):
        assert data.stats[key] == 0, key
    first = data.records[0]
    assert first.id == "g0000.png" and len(first.precise) == 2 and len(first.informative) == 2
    # each instruction is answered both ways: a synthesizer learns to write one triplet per fact
    assert {p.instruction for p in first.informative} == {p.instruction for p in first.precise}
    # which two facts depends on the count the caption states (1: kind, colour; 2: colour, count; 3: count, kind)
    assert {p.task_name for p in first.precise} == {"colour", "count"} and "two" in first.caption.lower()
    assert sum(len(r.precise) for r in data.records) == 320
    assert sum(len(r.informative) for r in data.records) == 320


def test_pairs_file_reads_with_the_core_pair_reader(fast_world):
    raw = json.loads(fast_world.pairs.read_text())
    assert fast_world.pairs.read_text().startswith("[\n  {")  # a pretty-printed array, as released
    pairs = [pair for _, pair in read_pairs(fast_world.pairs)]
    assert len(pairs) == 160
    assert [p.id for p in pairs[:2]] == ["d0000", "d0001"]
    assert pairs[0].caption == raw[0]["messages"][1]["content"]
    assert pairs[0].instruction == raw[0]["messages"][0]["content"].removeprefix("<image>")
    assert all(p.image.startswith(str(fast_world.pairs.parent.resolve())) for p in pairs)
