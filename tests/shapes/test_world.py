"""The toy world's generator: deterministic bytes, the public layouts, the cache, its design claims."""
import hashlib
import json
import re
from pathlib import Path

from adamllm.domains.toyshapes import demo_world, generate_world
from adamllm.domains.toyshapes.scenes import DOMAIN, GENERAL
from adamllm.domains.toyshapes.world import MANIFEST


def digests(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path, fast_world):
    again = generate_world(tmp_path / "again", seed=0, fast=True)
    assert digests(again.root) == digests(fast_world.root)
    other = digests(generate_world(tmp_path / "other", seed=1, fast=True).root)
    mine = digests(fast_world.root)
    assert set(other) == set(mine)  # same files ...
    changed = [name for name in mine if name != MANIFEST and other[name] != mine[name]]
    assert "domain/image_caption_pairs.json" in changed and "benchmark/vqa.jsonl" in changed
    assert sum(name.endswith(".png") for name in changed) > 0.9 * sum(n.endswith(".png") for n in mine)


def test_demo_world_reuses_a_matching_folder_and_regenerates_another(tmp_path):
    world = demo_world(tmp_path / "w", seed=3, fast=True)
    marker = world.root / "domain" / "untouched"
    marker.write_text("kept")
    assert demo_world(tmp_path / "w", seed=3, fast=True).manifest == world.manifest
    assert marker.exists()  # reused: nothing was rewritten
    other = demo_world(tmp_path / "w", seed=4, fast=True)
    assert other.manifest["seed"] == 4 and not marker.exists()  # another key: regenerated in place
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_manifest_counts(fast_world):
    counts = fast_world.manifest["counts"]
    # 160 general images: two facts each, asked both ways (2 precise, 2 informative pairs);
    # 5 x 16 VQA and 2 x 10 choice questions
    assert counts == {"general_images": 160, "precise_pairs": 320, "informative_pairs": 320, "domain_pairs": 160,
                      "benchmark_vqa": 80, "benchmark_choice": 20}


def test_the_two_distributions_share_colours_only():
    assert not set(GENERAL.kinds) & set(DOMAIN.kinds)
    assert not set(GENERAL.backgrounds) & set(DOMAIN.backgrounds)
    assert GENERAL.colours == DOMAIN.colours


def test_no_caption_passes_the_legacy_yes_no_gate(fast_world):
    # the legacy closed scorer counts any answer holding "yes" or "no" as a substring as a yes/no
    # answer: no caption word may hold them, or a model that only captions would pass
    pairs = json.loads(fast_world.pairs.read_text())
    captions = [p["messages"][1]["content"] for p in pairs]
    captions += [c["caption"] for c in json.loads((fast_world.general / "captions.json").read_text())]
    assert len(captions) == 320
    assert not [c for c in captions if re.search("yes|no", c.lower())]


def test_general_mix_is_one_exchange_per_example_with_the_image_first(fast_world):
    lines = [json.loads(line) for line in fast_world.general_mix.read_text().splitlines()]
    assert len(lines) == 160 * 5  # the caption and the 4 precise questions of each image
    assert all(len(r["messages"]) == 2 and r["messages"][0]["content"].startswith("<image>") for r in lines)
    assert all((fast_world.general / r["images"][0]).is_file() for r in lines)
    assert len({r["id"] for r in lines}) == len(lines)


def test_general_model_run_config(fast_world, tmp_path):
    from adamllm.domains.toyshapes.general_model import GeneralModelSettings

    config = GeneralModelSettings.for_world(fast=True).run_config(fast_world, tmp_path / "base")
    assert config["stages"] == ["train"] and config["trainer"]["max_steps"] == 300
    assert config["trainer"]["learning_rate"] == 1.5e-4 and config["trainer"]["lr_scheduler"] == "constant"
    # the toy world's pixel budget: 56 x 56 images stay 4 image tokens in training and evaluation
    assert config["backbone"]["min_pixels"] == config["backbone"]["max_pixels"] == 56 * 56
    assert config["data"]["train"] == str(fast_world.general_mix.resolve())
    assert GeneralModelSettings.for_world(fast=False).max_steps == 600
