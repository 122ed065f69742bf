"""The biomed and food domains: listed with their benchmarks and sources; their caption-source readers."""
import json
import os
import subprocess
import sys

import pytest

from adamllm.config import Section, validate_section
from adamllm.pairs import PairStats, pair_id, read_pairs
from adamllm.quarantine import Quarantine
from adamllm.io import DataError

DOMAINS = {
    "biomed": (["slake", "pathvqa", "vqa_rad", "pmc_vqa"], ["image_caption_pairs", "pubmedvision"]),
    "food": (["recipe1m", "nutrition5k", "food101", "foodseg103"], ["image_caption_pairs", "recipe1m"]),
}


def test_plugins_list_shows_the_domains_with_benchmarks_and_sources():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAMLLM_")}
    result = subprocess.run([sys.executable, "-m", "adamllm.cli", "plugins", "list", "--json"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for domain, (benchmarks, sources) in DOMAINS.items():
        row = rows[f"adamllm.{domain}"]
        assert row["status"] == "active" and row["builtin"]
        assert row["components"] == {"domain": [domain], "benchmark": benchmarks}
        listed = row["domains"][domain]
        assert listed["benchmarks"] == benchmarks
        assert [s["name"] for s in listed["sources"]] == sources
        assert all(s["format"] and s["location"] for s in listed["sources"])


def test_domain_defaults_are_valid_benchmark_sections(builtin_plugin_manager):
    for domain, (benchmarks, _) in DOMAINS.items():
        spec = builtin_plugin_manager.spec("domain", domain)
        assert spec.benchmarks == tuple(benchmarks)
        sections = spec.defaults["benchmarks"]
        assert [s["type"] for s in sections] == benchmarks
        for i, raw in enumerate(sections):
            component, problems = validate_section(builtin_plugin_manager, "benchmark", Section(**raw), (i,))
            assert not problems and component.options.scorer == "legacy"
        for name in benchmarks:
            assert builtin_plugin_manager.spec("benchmark", name).domain == domain


# -- caption sources -----------------------------------------------------------------------
def touch_images(root, *names):
    """Pairs must name existing image files (reading pairs does not decode them)."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_sharegpt_pairs(tmp_path):
    records = [
        {"images": ["imgs/a.jpg"], "messages": [{"role": "user", "content": "<image>Describe the figure."},
                                                {"role": "assistant", "content": "A CT scan of the chest."}]},
        {"images": ["imgs/b.jpg", "imgs/c.jpg"], "messages": [{"role": "user", "content": "<image><image>x"},
                                                              {"role": "assistant", "content": "two"}]},
        {"id": "k", "images": ["imgs/d.jpg"], "messages": [{"role": "user", "content": "<image>Caption?"},
                                                           {"role": "assistant", "content": "  "}]},
    ]
    path = tmp_path / "image_caption_pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    touch_images(tmp_path, "imgs/a.jpg", "imgs/d.jpg")
    stats = PairStats(quarantine=Quarantine(None, "skip"))
    [(where, pair)] = read_pairs(path, "sharegpt", stats=stats)
    # a stable id from the pair itself, not its row; the image absolute and confined to the file's folder
    assert (where, pair.id, pair.image, pair.instruction, pair.caption) == (
        f"{path}:1", pair_id("imgs/a.jpg", "A CT scan of the chest."), str(tmp_path / "imgs" / "a.jpg"),
        "Describe the figure.", "A CT scan of the chest.")
    assert stats.read == 1 and stats.skipped == {"not_one_image": 1}
    assert stats.quarantine.counts == {"empty_caption": 1}  # a bad record, set aside and counted


def test_pubmedvision_records_in_a_json_list(tmp_path):
    records = [{"id": "pmc1", "image": ["images/pmc1.jpg"],
                "conversations": [{"from": "human", "value": "<image>\nWhat does the image show?"},
                                  {"from": "gpt", "value": "An MRI of the knee."}]}]
    path = tmp_path / "PubMedVision_Alignment_VQA.json"
    path.write_text(json.dumps(records))
    touch_images(tmp_path, "images/pmc1.jpg")
    [(_, pair)] = read_pairs(path, "pubmedvision")
    assert (pair.id, pair.image, pair.instruction, pair.caption) == ("pmc1", str(tmp_path / "images" / "pmc1.jpg"),
                                                                     "What does the image show?", "An MRI of the knee.")


def test_recipe_records_become_recipe_captions(tmp_path):
    record = {"id": "r1", "image": "r/1.jpg", "title": "Pancakes",
              "ingredients": [{"text": "flour"}, {"text": "milk"}], "instructions": ["Mix.", {"text": "Fry."}]}
    path = tmp_path / "recipes.jsonl"
    path.write_text(json.dumps(record) + "\n")
    touch_images(tmp_path, "r/1.jpg")
    [(_, pair)] = read_pairs(path, "recipe1m", "adamllm.domains.sources:read_recipe_pairs")
    assert pair.caption == "Pancakes\nIngredients:\n- flour\n- milk\nInstructions:\n1. Mix.\n2. Fry."
    assert pair.image == str(tmp_path / "r" / "1.jpg") and pair.id == "r1" and pair.instruction


def test_caption_source_errors(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"images": ["../../etc/x.jpg"], "messages": [{"role": "user", "content": "a"},
                                                                            {"role": "assistant", "content": "b"}]}) + "\n")
    with pytest.raises(DataError, match=r"p\.jsonl:1: path '\.\./\.\./etc/x\.jpg' escapes its root"):
        list(read_pairs(path, "sharegpt"))
    path.write_text(json.dumps({"images": ["a.jpg"], "messages": [{"role": "user", "content": "a"}]}) + "\n")
    touch_images(tmp_path, "a.jpg")
    with pytest.raises(DataError, match=r"p\.jsonl:1: expected 'messages'"):
        list(read_pairs(path, "sharegpt"))
    with pytest.raises(DataError, match="no reader for image-caption format 'csv'"):
        list(read_pairs(path, "csv"))
