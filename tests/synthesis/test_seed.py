"""Seed files in the three public layouts → joined seed records → tuning conversations → labels."""
import json
from pathlib import Path

import pytest
from PIL import Image

from adamllm.io import DataError
from adamllm.plugins.synthesis.protocol import RELEASED
from adamllm.plugins.synthesis.seed import SeedPair, SeedRecord, read_seeds, strip_placeholder
from adamllm.plugins.synthesis.tuning import tuning_conversations, write_blank_image, write_jsonl
from adamllm.quarantine import Quarantine

PRECISE = "Answer with a precise response."
INFORMATIVE = "Answer with an informative response."


def human(value):
    return {"from": "human", "value": value}


def gpt(value):
    return {"from": "gpt", "value": value}


def write_array(path: Path, entries: list) -> Path:
    path.write_text(json.dumps(entries, indent=2), encoding="utf-8")  # pretty-printed, as released
    return path


def write_seed_files(folder: Path, extra_precise=(), extra_captions=()) -> dict:
    """Images a, b, c (real PNGs) in the released layouts: a and b usable, c lacks an informative
    pair, a's caption entry repeats (under another folder), z has precise pairs but no caption."""
    images = folder / "images" / "vflan"
    images.mkdir(parents=True)
    for name, colour in (("a.png", "red"), ("b.png", "blue"), ("c.png", "green")):
        Image.new("RGB", (32, 24), colour).save(images / name)
    captions = write_array(folder / "captions.json", [
        {"image": "vflan/a.png", "caption": "A red square on a white page.",
         "conversations": [human("<image>\nWrite a caption."), gpt("A red square on a white page.")]},
        {"image": "vflan/b.png", "caption": "A blue circle.",
         "conversations": [human("<image>\nWrite a caption."), gpt("A blue circle.")]},
        {"image": "elsewhere/a.png", "caption": "A repeat that is never used.",
         "conversations": [human("<image>\nWrite a caption."), gpt("A repeat that is never used.")]},
        {"image": "vflan/c.png", "caption": "A green triangle.",
         "conversations": [human("<image>\nWrite a caption."), gpt("A green triangle.")]},
        *extra_captions,
    ])
    precise = write_array(folder / "precise.json", [
        {"image": "vflan/a.png", "task_name": "colour_vqa",
         "conversations": [human("<image>\nWhat colour is the square?"), gpt("Red.")]},
        {"image": "b.png", "task_name": "shape_vqa",
         "conversations": [human("Name the shape.\n<image>"), gpt("Circle.")]},
        {"image": "vflan/a.png", "task_name": "colour_vqa",
         "conversations": [human("Is there a circle?\n<image>"), gpt("No.")]},
        {"image": "vflan/c.png", "task_name": "shape_vqa",
         "conversations": [human("<image>\nWhat shape is it?"), gpt("Triangle.")]},
        {"image": "vflan/z.png", "task_name": "shape_vqa",
         "conversations": [human("<image>\nWhat shape is it?"), gpt("Star.")]},
        *extra_precise,
    ])
    informative = write_array(folder / "informative.json", [
        {"image": "vflan/b.png", "conversations": [
            human("<image>\nWhat is the object and what colour is it?"),
            gpt("The object is round with no corners, so it is a circle, and it is blue.")]},
        {"image": "vflan/a.png", "conversations": [
            human("Describe the colour of the square.\n<image>"),
            gpt("The square is filled with a bright red that stands out against the white page.")]},
        {"image": "vflan/b.png", "conversations": [
            human("<image>\nIs the circle large?"),
            gpt("The circle covers most of the picture, so it is large.")]},
    ])
    return {"captions": captions, "precise": precise, "informative": informative, "image_root": folder / "images"}


@pytest.fixture
def seed_files(tmp_path):
    return write_seed_files(tmp_path / "seed")


def test_join_rules(seed_files):
    data = read_seeds(**seed_files)
    root = (seed_files["image_root"]).resolve()
    assert [r.id for r in data.records] == ["a.png", "b.png"]  # caption-file order; c has no informative pair
    a, b = data.records
    assert a.image == str(root / "vflan" / "a.png") and a.caption == "A red square on a white page."
    assert [(p.instruction, p.answer, p.task_name) for p in a.precise] == [
        ("What colour is the square?", "Red.", "colour_vqa"), ("Is there a circle?", "No.", "colour_vqa")]
    assert [(p.instruction, p.answer) for p in b.informative] == [
        ("What is the object and what colour is it?",
         "The object is round with no corners, so it is a circle, and it is blue."),
        ("Is the circle large?", "The circle covers most of the picture, so it is large.")]
    assert b.precise[0].instruction == "Name the shape."  # the key is the base name: "b.png" joins "vflan/b.png"
    assert a.task_name == "colour_vqa" and b.task_name == "shape_vqa"
    assert a.precise[1].where == f"{seed_files['precise']}:30"  # the line its entry starts on
    assert data.stats == {"captioned_images": 3, "seed_images": 2, "duplicate_captions": 1,
                          "no_precise_pair": 0, "no_informative_pair": 1, "precise_without_caption": 1,
                          "informative_without_caption": 0, "images_by_base_name": 0}


def test_placeholder_stripped_at_start_and_end_only():
    assert strip_placeholder("<image>\nWhat is it?") == "What is it?"
    assert strip_placeholder("What is it?\n<image>") == "What is it?"
    assert strip_placeholder("What is it?") == "What is it?"
    with pytest.raises(ValueError, match="inside the instruction"):
        strip_placeholder("Compare <image> with the text.")


BAD_PRECISE = [
    {"image": "vflan/a.png", "task_name": "t", "conversations": [human("<image>\nQ?")]},
    {"image": "vflan/a.png", "task_name": "t", "conversations": [human("Look at <image> here."), gpt("A.")]},
    {"image": "vflan/a.png", "conversations": [human("<image>\nQ?"), gpt("A.")]},
]
BAD_CAPTIONS = [{"image": "../../outside.png", "caption": "Escapes."}, {"image": "vflan/gone.png", "caption": "X."}]


def test_bad_entries_go_to_the_quarantine_with_file_and_line(tmp_path):
    files = write_seed_files(tmp_path / "seed", extra_precise=BAD_PRECISE, extra_captions=BAD_CAPTIONS)
    with Quarantine(tmp_path / "rejected.jsonl") as quarantine:
        data = read_seeds(**files, quarantine=quarantine)
    assert [r.id for r in data.records] == ["a.png", "b.png"]
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [(Path(r["where"]).name, r["kind"]) for r in rejected] == [
        ("captions.json:58", "bad_image_path"), ("captions.json:62", "missing_image"),
        ("precise.json:72", "bad_seed"), ("precise.json:82", "bad_seed"), ("precise.json:96", "bad_seed")]
    assert "exactly two turns" in rejected[2]["reason"] and "inside the instruction" in rejected[3]["reason"]
    assert "'task_name'" in rejected[4]["reason"]
    assert data.stats["rejected"] == 5


def test_bad_entry_without_quarantine_is_an_error_naming_file_and_line(tmp_path):
    files = write_seed_files(tmp_path / "seed", extra_precise=BAD_PRECISE[:1])
    with pytest.raises(DataError, match=r"precise\.json:72: 'conversations' must hold exactly two turns"):
        read_seeds(**files)


def test_exact_conversations(seed_files, tmp_path):
    data = read_seeds(**seed_files)
    tuning = tuning_conversations(data.records, RELEASED, seed=0, blank_ratio=0.0)
    assert tuning.dev == [] and tuning.blanked == []
    a, b = tuning.train
    assert a["id"] == "a.png" and a["images"] == [data.records[0].image]
    assert a["messages"][:2] == [{"role": "user", "content": "<image>Describe the image."},
                                 {"role": "assistant", "content": "A red square on a white page."}]
    task_turns = lambda record: sorted(zip([m["content"] for m in record["messages"][2::2]],  # noqa: E731
                                           [m["content"] for m in record["messages"][3::2]]))
    assert [m["role"] for m in a["messages"]] == ["user", "assistant"] * 4
    assert task_turns(a) == sorted([
        (f"{PRECISE}\nWhat colour is the square?", "Red."),
        (f"{PRECISE}\nIs there a circle?", "No."),
        (f"{INFORMATIVE}\nDescribe the colour of the square.",
         "The square is filled with a bright red that stands out against the white page."),
    ])
    assert task_turns(b) == sorted([
        (f"{PRECISE}\nName the shape.", "Circle."),
        (f"{INFORMATIVE}\nWhat is the object and what colour is it?",
         "The object is round with no corners, so it is a circle, and it is blue."),
        (f"{INFORMATIVE}\nIs the circle large?", "The circle covers most of the picture, so it is large."),
    ])
    assert "<image>" not in json.dumps(a["messages"][1:])


def synthetic(n, turns=4):
    return [SeedRecord(id=f"img{i}.png", image=f"/data/img{i}.png", caption=f"Caption {i}.",
                       precise=[SeedPair(instruction=f"Q{i}.{k}?", answer=f"A{k}.") for k in range(turns)],
                       informative=[SeedPair(instruction=f"Why {i}.{k}?", answer=f"Because {k}.") for k in range(turns)])
            for i in range(n)]


def test_shuffle_is_seeded_per_record_reproducible_and_seed_dependent():
    seeds = synthetic(6)
    first = tuning_conversations(seeds, seed=3, blank_ratio=0)
    assert first == tuning_conversations(seeds, seed=3, blank_ratio=0)
    other = tuning_conversations(seeds, seed=4, blank_ratio=0)
    assert [r["messages"] for r in first.train] != [r["messages"] for r in other.train]
    # per record: a record's order does not depend on which other records are present
    assert tuning_conversations(seeds[2:4], seed=3, blank_ratio=0).train == first.train[2:4]
    # actually shuffled: precise and informative turns interleave in some record
    kinds = ["".join("p" if m["content"].startswith(PRECISE) else "i" for m in r["messages"][2::2])
             for r in first.train]
    assert any(k != "ppppiiii" for k in kinds)


@pytest.mark.parametrize("n", [10, 23, 37])
def test_blank_draw_is_exact_and_reproducible(n, tmp_path):
    blank = write_blank_image(tmp_path / "blank.png")
    assert Image.open(blank).getextrema() == ((255, 255), (255, 255), (255, 255))
    seeds = synthetic(n, turns=1)
    tuning = tuning_conversations(seeds, seed=7, blank_image=blank)
    assert len(tuning.blanked) == round(0.1 * n)
    shown = {r["id"]: r["images"][0] for r in tuning.train}
    assert {i for i, image in shown.items() if image == str(blank)} == set(tuning.blanked)
    for record, seed in zip(tuning.train, seeds):  # the caption and answers stay
        assert record["messages"][1]["content"] == seed.caption
    assert tuning_conversations(seeds, seed=7, blank_image=blank).blanked == tuning.blanked
    assert tuning_conversations(seeds, seed=8, blank_image=blank).blanked != tuning.blanked


@pytest.mark.parametrize("n", [10, 23, 37])
def test_mismatch_draw_shows_another_records_image_exactly_and_reproducibly(n):
    seeds = synthetic(n, turns=1)
    tuning = tuning_conversations(seeds, seed=7, blank_image="/b.png", blank_ratio=0.2, mismatch_ratio=0.5)
    assert len(tuning.blanked) == round(0.2 * n) and len(tuning.mismatched) == round(0.5 * n)
    assert not set(tuning.blanked) & set(tuning.mismatched)
    own = {s.id: s.image for s in seeds}
    for record, seed in zip(tuning.train, seeds):
        image = record["images"][0]
        if record["id"] in tuning.mismatched:  # another seed record's image, never its own
            assert image != own[record["id"]] and image in own.values()
        elif record["id"] not in tuning.blanked:
            assert image == own[record["id"]]
        assert record["messages"][1]["content"] == seed.caption  # the caption and answers stay
    again = tuning_conversations(seeds, seed=7, blank_image="/b.png", blank_ratio=0.2, mismatch_ratio=0.5)
    assert again == tuning
    other = tuning_conversations(seeds, seed=8, blank_image="/b.png", blank_ratio=0.2, mismatch_ratio=0.5)
    assert [r["images"] for r in other.train] != [r["images"] for r in tuning.train]
    # the default draws none, and the blank draw does not move when mismatches are asked for
    assert tuning_conversations(seeds, seed=7, blank_image="/b.png", blank_ratio=0.2).mismatched == []
    assert tuning_conversations(seeds, seed=7, blank_image="/b.png", blank_ratio=0.2).blanked == tuning.blanked
    with pytest.raises(ValueError, match="add up to at most 1"):
        tuning_conversations(seeds, seed=7, blank_image="/b.png", blank_ratio=0.6, mismatch_ratio=0.6)


def test_dev_split_is_seeded_and_apart(tmp_path):
    seeds = synthetic(20, turns=1)
    tuning = tuning_conversations(seeds, seed=1, blank_ratio=0.1, blank_image="blank.png", dev_ratio=0.25)
    assert len(tuning.dev) == 5 and len(tuning.train) == 15
    assert sorted(r["id"] for r in tuning.train + tuning.dev) == sorted(s.id for s in seeds)
    assert tuning_conversations(seeds, seed=1, blank_image="blank.png", dev_ratio=0.25) == tuning


def test_same_seed_gives_byte_identical_jsonl(tmp_path):
    seeds = synthetic(12)
    paths = [write_jsonl(tuning_conversations(seeds, seed=s, blank_image="/b.png").train, tmp_path / f"{i}.jsonl")
             for i, s in enumerate((5, 5, 6))]
    assert paths[0].read_bytes() == paths[1].read_bytes() != paths[2].read_bytes()


def test_after_first_turn_labels_turns_two_on_and_end_of_text(seed_files, tiny_checkpoints):
    from adamllm.backbone import IGNORE_INDEX
    from adamllm.backbones.families import Qwen2VLAdapter

    data = read_seeds(**seed_files)
    record = tuning_conversations(data.records, seed=0, blank_ratio=0).train[0]
    adapter = Qwen2VLAdapter.from_pretrained(tiny_checkpoints("qwen2_vl"))
    sample = adapter.encode(record["messages"], record["images"], policy="after_first_turn")
    labelled = adapter.tokenizer.decode(sample["input_ids"][sample["labels"] != IGNORE_INDEX])
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in record["messages"][2:])
    assert labelled == turns + "<|endoftext|>"
    # one contiguous labelled block, ending on the end-of-text token
    mask = (sample["labels"] != IGNORE_INDEX).int()
    assert mask[int(mask.argmax()):].all()
    assert sample["labels"][-1].item() == adapter.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    unlabelled = adapter.tokenizer.decode(sample["input_ids"][sample["labels"] == IGNORE_INDEX])
    assert "A red square on a white page." in unlabelled and "Describe the image." in unlabelled
