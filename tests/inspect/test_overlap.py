"""The overlap check: training images against benchmark images (exact bytes, or perceptual hashes a
few bits apart), wherever the benchmarks are named: ``--config``, the evaluate stage's fingerprint,
``--against``; and what the card says when no check could run."""
import json
import random
import shutil

import pytest
from click.testing import CliRunner

from adamllm.cli import cli
from adamllm.overlap import HASH_BITS, Hashed, ImageRef, check_overlap, find_matches


def inspect(run_dir, *args):
    result = CliRunner().invoke(cli, ["inspect", str(run_dir), *args])
    assert result.exit_code == 0, result.output
    return json.loads((run_dir / "card.json").read_text()), result


def matches(numbers):
    return sorted((m["train"].rsplit("/", 1)[1], m["benchmark_image"].rsplit("/", 1)[1], m["exact"])
                  for m in numbers["overlap"]["matches"])


EXPECTED = [("p3.png", "copy_small.jpg", False), ("p4.png", "exact.png", True)]


def test_a_resized_copy_and_a_byte_copy_are_found_and_distinct_images_are_not(project, kit):
    numbers, result = inspect(project / "out", "--config", str(project / "run.yaml"))
    overlap = numbers["overlap"]
    assert matches(numbers) == EXPECTED  # own1.png, own2.png and the other training images: no match
    near = next(m for m in overlap["matches"] if not m["exact"])
    assert near["distance"] <= 4 and near["benchmark_samples"] == ["b0"]
    assert (overlap["train_images"], overlap["benchmark_images"], overlap["pairs"]) == (7, 4, 2)
    assert overlap["benchmarks"]["vqa"] == {"images": 4, "flat": 0, "unreadable": 0, "images_matched": 2,
                                            "pairs": 2, "exact_pairs": 1}
    assert ("1 training/benchmark image pair(s) are exact copies (the same file bytes); 1 possible "
            "near-duplicate pair(s), look") in result.output
    page = kit.Page((project / "out" / "card.html").read_text())
    assert page.text_of("overlap-status").startswith("1 training/benchmark image pair(s) are exact copies")
    assert page.row("overlap-table", "vqa") == ["vqa", "4", "2", "2", "1", "0", "0"]
    shown = "".join(page.texts)
    assert str(project / "bench/images/copy_small.jpg") in shown and str(project / "pairs/images/p3.png") in shown
    assert "own1.png" not in shown


def test_a_tighter_threshold_keeps_only_what_is_that_close(project):
    loose, _ = inspect(project / "out", "--config", str(project / "run.yaml"), "--threshold", "32")
    assert len(loose["overlap"]["matches"]) >= 2
    assert all(m["distance"] <= 32 for m in loose["overlap"]["matches"])
    exact_only, _ = inspect(project / "out", "--config", str(project / "run.yaml"), "--threshold", "0")
    assert all(m["distance"] == 0 for m in exact_only["overlap"]["matches"])


def test_benchmarks_are_read_from_the_evaluate_fingerprint(site, tmp_path, kit):
    """Without --config, the benchmarks are the ones the evaluate stage's fingerprint names (written
    here as the runner writes it when the stage starts)."""
    from adamllm.config import load_config
    from adamllm.fingerprint import stage_fingerprint
    from adamllm.registry import PluginManager
    from adamllm.stages import stage

    project = kit.make_run(site, tmp_path / "p")
    numbers, _ = inspect(project / "out")
    assert numbers["overlap"]["status"] == "benchmarks_unknown"
    assert "stage evaluate has not run" in numbers["overlap"]["message"]

    config = project / "eval.yaml"
    config.write_text("output_dir: out\nbenchmarks: [{type: vqa, source: bench, limit: 5}]\n")
    cfg = load_config(config, PluginManager(strict=True))
    (project / "out/evaluate").mkdir()
    (project / "out/evaluate/_running.json").write_text(json.dumps(stage_fingerprint(cfg, stage("evaluate"), [])))
    numbers, _ = inspect(project / "out")
    assert numbers["config_from"] == "fingerprints" and matches(numbers) == EXPECTED


def test_against_a_folder_or_a_benchmark_file(project):
    numbers, _ = inspect(project / "out", "--against", str(project / "bench/images"))
    assert matches(numbers) == EXPECTED
    assert list(numbers["overlap"]["benchmarks"]) == [f"--against {project / 'bench/images'}"]
    numbers, _ = inspect(project / "out", "--against", str(project / "bench/test.jsonl"))
    assert matches(numbers) == EXPECTED
    assert sorted(m["benchmark_samples"][0] for m in numbers["overlap"]["matches"]) == ["b0", "b1"]


def test_no_benchmark_configured_is_said_plainly(project, kit, tmp_path):
    bare = tmp_path / "bare.yaml"
    bare.write_text(kit.config)  # no benchmarks, no domain
    numbers, result = inspect(project / "out", "--config", str(bare))
    assert numbers["overlap"]["status"] == "no_benchmark"
    assert numbers["overlap"]["message"].startswith("no benchmark was configured")
    assert "warning: no benchmark was configured" in result.stderr
    page = kit.Page((project / "out" / "card.html").read_text())
    assert page.text_of("overlap-status").startswith("no benchmark was configured")


def test_without_imagehash_the_card_says_how_to_install_it(project, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "imagehash", None)  # what a missing package raises
    numbers, result = inspect(project / "out", "--config", str(project / "run.yaml"))
    assert numbers["overlap"]["status"] == "unavailable"
    assert "needs the imagehash library: pip install 'adamllm[inspect]'" in numbers["overlap"]["message"]
    assert numbers["counts"]["triplets"] == 7  # the rest of the card is made


def test_hashes_are_cached_by_content(project):
    cache = project / "out" / ".card_hashes.jsonl"
    cache.unlink(missing_ok=True)
    inspect(project / "out", "--config", str(project / "run.yaml"))
    entries = [json.loads(line) for line in cache.read_text().splitlines()]
    assert len(entries) == len({e["sha256"] for e in entries}) == 10  # 7 + 4 images, exact.png is p4.png
    first = cache.read_bytes()
    numbers, _ = inspect(project / "out", "--config", str(project / "run.yaml"))
    assert cache.read_bytes() == first and matches(numbers) == EXPECTED


def test_flat_images_are_compared_by_bytes_only(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 40), "red").save(tmp_path / "red.png")
    Image.new("RGB", (64, 32), "blue").save(tmp_path / "blue.png")  # the same phash as red, a distinct image
    shutil.copyfile(tmp_path / "red.png", tmp_path / "red_copy.png")
    train = [ImageRef(str(tmp_path / "red.png"), str(tmp_path / "red.png"), "train")]
    bench = [ImageRef(str(tmp_path / n), str(tmp_path / n), "b") for n in ("blue.png", "red_copy.png")]
    result = check_overlap(train, {"b": bench})
    assert [(m.benchmark.label.rsplit("/", 1)[1], m.exact) for m in result.matches] == [("red_copy.png", True)]
    assert result.as_dict()["train_flat"] == 1 and result.as_dict()["benchmarks"]["b"]["flat"] == 2


@pytest.mark.parametrize("threshold", [0, 1, 4, 9])
def test_the_index_finds_exactly_what_a_full_comparison_finds(threshold):
    rng = random.Random(threshold)
    bench = [rng.getrandbits(HASH_BITS) for _ in range(300)]
    train = []
    for value in rng.sample(bench, 60):  # near copies: up to threshold + 2 bits flipped
        for bit in rng.sample(range(HASH_BITS), rng.randint(0, threshold + 2)):
            value ^= 1 << bit
        train.append(value)
    train += [rng.getrandbits(HASH_BITS) for _ in range(100)]

    def hashed(values, group):
        return [Hashed(ImageRef(f"{group}{i}", None, group), phash=v) for i, v in enumerate(values)]

    found = {(m.train.label, m.benchmark.label, m.distance) for m in
             find_matches(hashed(train, "t"), hashed(bench, "b"), threshold)}
    full = {(f"t{i}", f"b{j}", (a ^ b).bit_count()) for i, a in enumerate(train) for j, b in enumerate(bench)
            if (a ^ b).bit_count() <= threshold}
    assert found == full and len(full) >= 20


@pytest.mark.slow  # about 6 s: a tiny Qwen2-VL is built, trained 4 steps and evaluated
def test_a_whole_run_names_its_benchmarks_through_the_evaluate_stage(site, tmp_path, kit):
    """synthesize -> filter -> compose -> train -> evaluate, then ``adamllm inspect RUN_DIR`` alone:
    the evaluate stage's fingerprint names the benchmark, and the card shows every stage."""
    config = kit.config.replace("[synthesize, filter, compose]", "[synthesize, filter, compose, train, evaluate]")
    config += (f"backbone: {{type: qwen2_vl, model: {tmp_path / 'tiny'}, tiny: tiny, max_length: 512}}\n"
               "trainer: {type: sft, batch_size: 4, max_steps: 4}\n"
               "benchmarks: [{type: vqa, source: bench, max_new_tokens: 2, batch_size: 5}]\n")
    project = kit.make_run(site, tmp_path / "whole", config)
    numbers, _ = inspect(project / "out")
    assert list(numbers["stages"]) == ["synthesize", "filter", "compose", "train", "evaluate"]
    assert all(info["status"] == "done" for info in numbers["stages"].values())
    assert numbers["config_from"] == "fingerprints" and matches(numbers) == EXPECTED
    assert numbers["stages"]["train"]["summary"]["steps"] == 4
    page = kit.Page((project / "out" / "card.html").read_text())
    assert page.row("summary-train", "steps") == ["steps", "4"]
    assert page.row("summary-evaluate", "scores.vqa.closed_accuracy")[0] == "scores.vqa.closed_accuracy"


def _drawing(path, colour, kind="star", seed=0, texture="checkered"):
    """One of the demo's 56 px toy scenes: shapes on a textured background (the layout, jitter and
    texture follow from ``seed``; only the shapes' colour or kind changes)."""
    import random as _random

    from adamllm.domains.toyshapes.draw import draw_scene

    draw_scene(56, kind, colour, [(0, 0), (1, 1)], 10.0, "navy", texture, _random.Random(seed)).save(path)
    return path


def _refs(paths, group):
    return [ImageRef(str(p), str(p), group) for p in paths]


@pytest.mark.parametrize("texture", ["checkered", "striped", "speckled", "plain"])
def test_drawings_of_one_layout_in_other_colours_are_not_near_duplicates(tmp_path, texture):
    """The false alarm of the demo's own world: the grey hashes of the same layout drawn in red and
    in green are within the threshold, the colour layouts are not, so no pair is flagged; the pair
    is counted as close in grey only."""
    from adamllm.overlap import perceptual

    red = _drawing(tmp_path / "red.png", "red", texture=texture)
    green = _drawing(tmp_path / "green.png", "green", texture=texture)
    assert (perceptual(red).phash ^ perceptual(green).phash).bit_count() <= 4  # what raised the alarm
    result = check_overlap(_refs([red], "train"), {"b": _refs([green], "b")})
    assert result.matches == [] and len(result.grey_only) == 1
    assert result.grey_only[0].colour_difference > 100
    numbers = result.as_dict()
    assert (numbers["pairs"], numbers["near_pairs"], numbers["grey_only_pairs"]) == (0, 0, 1)


def test_a_resized_or_re_encoded_copy_is_a_possible_near_duplicate(tmp_path):
    from PIL import Image

    original = _drawing(tmp_path / "scene.png", "yellow", kind="diamond", seed=3)
    image = Image.open(original)
    image.save(tmp_path / "jpeg.jpg", quality=75)
    image.resize((112, 112), Image.Resampling.BICUBIC).save(tmp_path / "big.png")
    image.resize((112, 112), Image.Resampling.BICUBIC).save(tmp_path / "big.jpg", quality=85)
    copies = [tmp_path / n for n in ("jpeg.jpg", "big.png", "big.jpg")]
    other = _drawing(tmp_path / "other.png", "blue", kind="diamond", seed=3)
    result = check_overlap(_refs([original], "train"), {"b": _refs([*copies, other], "b")})
    found = {m.benchmark.label.rsplit("/", 1)[1]: m for m in result.matches}
    assert sorted(found) == ["big.jpg", "big.png", "jpeg.jpg"]  # the blue one is another image
    assert all(not m.exact and m.distance <= 4 and m.colour_difference <= 48 for m in found.values())


def test_an_identical_file_is_an_exact_copy_and_the_card_says_so_apart(tmp_path):
    from adamllm.card_sources import overlap_message

    original = _drawing(tmp_path / "scene.png", "red")
    shutil.copyfile(original, tmp_path / "same.png")
    jpeg = tmp_path / "same.jpg"
    __import__("PIL.Image").Image.open(original).save(jpeg, quality=90)
    result = check_overlap(_refs([original], "train"), {"b": _refs([tmp_path / "same.png", jpeg], "b")})
    assert [(m.benchmark.label.rsplit("/", 1)[1], m.exact) for m in result.matches] == [("same.png", True),
                                                                                       ("same.jpg", False)]
    message = overlap_message(result.as_dict())
    assert message.startswith("1 training/benchmark image pair(s) are exact copies (the same file bytes); "
                              "1 possible near-duplicate pair(s), look")


def test_a_cache_entry_without_colours_is_hashed_again(tmp_path):
    from adamllm.overlap import HashCache

    red = _drawing(tmp_path / "red.png", "red")
    green = _drawing(tmp_path / "green.png", "green")
    cache = tmp_path / "cache.jsonl"
    check_overlap(_refs([red], "train"), {"b": _refs([green], "b")}, cache=cache)
    entries = [json.loads(line) for line in cache.read_text().splitlines()]
    cache.write_text("".join(json.dumps({k: e[k] for k in ("sha256", "phash", "flat")}) + "\n" for e in entries))
    assert HashCache(cache).known == {}  # an older adamllm's entries: no colours
    result = check_overlap(_refs([red], "train"), {"b": _refs([green], "b")}, cache=cache)
    assert result.matches == [] and len(HashCache(cache).known) == 2
