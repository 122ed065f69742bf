"""``adamllm inspect RUN_DIR`` on a real run (see conftest.py for what each fixture pair becomes):
the page's counts, histograms and sampled records, read back with an HTML parser; ``--json``;
escaping; missing stages; an empty folder."""
import json
import re

from click.testing import CliRunner

from adamllm.cli import cli


def inspect(run_dir, *args):
    result = CliRunner().invoke(cli, ["inspect", str(run_dir), *args])
    return result


def card_of(project, *args):
    result = inspect(project / "out", "--config", str(project / "run.yaml"), *args)
    assert result.exit_code == 0, result.output
    page = (project / "out" / "card.html").read_text(encoding="utf-8")
    return page, json.loads((project / "out" / "card.json").read_text())


def test_json_numbers_are_the_hand_counted_ones(project):
    result = inspect(project / "out", "--config", str(project / "run.yaml"), "--json")
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.stdout)
    assert numbers == json.loads((project / "out" / "card.json").read_text())
    assert numbers["counts"] == {
        "pairs_read": 9,  # pair 8's image is missing: never read as a pair
        "pairs": 8,  # pair 9's image does not decode: quarantined before the synthesizer
        "triplets": 7, "no_triplet": 1,
        "verdicts": {"yes": 4, "no": 1, "open": 1, "other": 1}, "judged": 7, "keep_rate": 0.5714,
        "examples": 7, "examples_by_turns": {"2": 3, "4": 4}, "examples_by_stage": None, "mix_images": 7,
        "quarantined": {"synthesize": 2, "compose": 1},
    }
    assert numbers["quarantined_by_kind"] == {"synthesize": {"missing_image": 1, "bad_image": 1},
                                              "compose": {"missing_image": 1}}
    lengths = numbers["lengths"]
    # precise = each triplet's first caption word: 7 one-word answers
    assert lengths["precise"] == {"n": 7, "min": 1, "max": 1, "mean": 1.0, "median": 1,
                                  "bins": [{"lo": 0, "hi": 1, "count": 0}, {"lo": 1, "hi": 2, "count": 7}]}
    # captions of the 9 pairs read: 7, 6, 7, 6, 14, 3, 8, 6, (pair 8 unread), 7 words
    caption = lengths["caption"]
    assert (caption["n"], caption["min"], caption["max"], caption["median"], caption["mean"]) == (9, 3, 14, 7, 7.11)
    assert {b["lo"]: b["count"] for b in caption["bins"] if b["count"]} == {3: 1, 6: 3, 7: 3, 8: 1, 14: 1}
    assert [b["lo"] for b in caption["bins"]] == list(range(15))
    assert lengths["instruction"]["n"] == 7 and lengths["instruction"]["median"] == 7
    assert numbers["sample"]["sections"] == {
        "yes": {"total": 4, "ids": ["p3", "p4", "p5", "p6"]}, "no": {"total": 1, "ids": ["p0"]},
        "open": {"total": 1, "ids": ["p1"]}, "other": {"total": 1, "ids": ["p2"]},
        "no triplet": {"total": 1, "ids": ["p7"]}}
    assert numbers["notes"] == [] and numbers["config_from"].startswith("config ")


def test_the_page_shows_the_counts_and_every_sampled_record(project, kit):
    source, numbers = card_of(project)
    page = kit.Page(source)
    for what, count in [("pairs read", "9"), ("pairs handled", "8"), ("triplets", "7"), ("verdict yes", "4"),
                        ("verdict no", "1"), ("verdict open", "1"), ("verdict other", "1"), ("training examples", "7"),
                        ("pairs without a triplet", "1"), ("keep rate (yes / judged)", "57.1 %"),
                        ("examples with 2 messages", "3"), ("examples with 4 messages", "4")]:
        assert page.row("counts-table", what) == [what, count]
    assert page.row("quarantine-table", "synthesize", "bad_image") == ["synthesize", "bad_image", "1"]
    assert page.row("quarantine-table", "synthesize", "missing_image") == ["synthesize", "missing_image", "1"]
    assert page.row("quarantine-table", "compose", "missing_image") == ["compose", "missing_image", "1"]
    read = (project / "out/synthesize/triplets.jsonl").read_text().splitlines()
    triplets = {t["id"]: t for t in map(json.loads, read)}
    mix = {m["id"]: m for m in map(json.loads, (project / "out/compose/mix.jsonl").read_text().splitlines())}
    for section, info in numbers["sample"]["sections"].items():
        for key in info["ids"]:
            shown = page.text_of(f"rec-{key}")
            index = int(key[1:])
            assert kit.captions[index] in shown, (key, shown)
            if key in triplets:
                verdict = {0: "no", 1: "open", 2: "other"}.get(index, "yes")
                assert section == verdict and f"judge: {verdict}" in shown
                for field in ("instruction", "precise", "informative"):
                    assert triplets[key][field] in shown
                assert all(m["content"] in shown for m in mix[key]["messages"])
                assert len(mix[key]["messages"]) == (4 if verdict == "yes" else 2)
            else:
                assert section == "no triplet" and "not in the training mix" in shown
    # every record's image is a thumbnail inside the page, nothing is fetched
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed")
        assert attrs.get("src") is None or attrs["src"].startswith("data:image/jpeg;base64,")
        assert attrs.get("href") is None or attrs["href"].startswith("#")
    assert sum(1 for tag, attrs in page.tags if tag == "img") >= 8


def test_record_text_is_escaped(project, kit):
    source, _ = card_of(project)
    page = kit.Page(source)
    assert "<script" not in source.lower()  # no script element, not even the caption's
    assert kit.script_caption in page.text_of("rec-p6")  # the reader sees the text as written
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; a white triangle" in source


def test_the_sample_is_seeded(project, kit):
    first, numbers = card_of(project, "--sample", "2", "--seed", "3")
    again, _ = card_of(project, "--sample", "2", "--seed", "3")
    assert first == again  # same seed, same page, byte for byte
    yes = numbers["sample"]["sections"]["yes"]
    assert yes["total"] == 4 and len(yes["ids"]) == 2 and set(yes["ids"]) <= {"p3", "p4", "p5", "p6"}
    assert yes["ids"] == sorted(yes["ids"])  # kept in file order
    page = kit.Page(first)
    assert {f"rec-{k}" for k in yes["ids"]} <= set(page.ids)
    assert not {f"rec-{k}" for k in {"p3", "p4", "p5", "p6"} - set(yes["ids"])} & set(page.ids)
    choices = set()
    for seed in range(8):
        _, other = card_of(project, "--sample", "2", "--seed", str(seed))
        choices.add(tuple(other["sample"]["sections"]["yes"]["ids"]))
    assert len(choices) > 1


def test_missing_stages_are_left_out(site, tmp_path, kit):
    project = kit.make_run(site, tmp_path / "only", kit.config.replace("[synthesize, filter, compose]", "[synthesize]"))
    result = inspect(project / "out", "--json")
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.stdout)
    assert list(numbers["stages"]) == ["synthesize"]
    counts = numbers["counts"]
    assert (counts["triplets"], counts["verdicts"], counts["examples"], counts["keep_rate"]) == (7, None, None, None)
    assert numbers["notes"] == ["no output of stage(s) filter, compose: their numbers are not shown"]
    assert {k: v["total"] for k, v in numbers["sample"]["sections"].items()} == {"no triplet": 1, "not judged": 7}
    assert numbers["overlap"]["status"] == "no_training_mix"
    page = kit.Page((project / "out" / "card.html").read_text())
    assert page.row("counts-table", "triplets") == ["triplets", "7"]
    assert page.row("counts-table", "training examples") == ["training examples", "—"]  # not 0: never composed
    assert "no output of stage(s) filter, compose" in "".join(page.texts)
    assert kit.captions[3] in page.text_of("rec-p3")  # captions found through the synthesize fingerprint


def test_a_folder_without_stage_output_is_a_one_line_error(tmp_path):
    (tmp_path / "synthesize").mkdir()  # an empty stage folder is no output
    result = inspect(tmp_path)
    assert result.exit_code == 1 and not (tmp_path / "card.html").exists()
    (line,) = result.stderr.splitlines()
    assert re.fullmatch(r"Error: .+: no stage output \(none of tune/, synthesize/.*\); run `adamllm run CONFIG`.*",
                        line), line


def test_shards_of_a_stopped_data_parallel_run_are_counted(site, tmp_path, kit):
    """A data-parallel run stopped before merging leaves ``triplets.rank<N>.jsonl`` beside the main
    file: those records count (and show) as well."""
    project = kit.make_run(site, tmp_path / "dp")
    main = project / "out/synthesize/triplets.jsonl"
    lines = main.read_text().splitlines(keepends=True)
    main.write_text("".join(lines[:4]))
    (main.parent / "triplets.rank1.jsonl").write_text("".join(lines[4:]) + '{"id": "torn')
    result = inspect(project / "out", "--json", "--no-overlap")
    assert result.exit_code == 0, result.output
    numbers = json.loads(result.stdout)
    assert numbers["counts"]["triplets"] == 7 and numbers["counts"]["verdicts"]["yes"] == 4
    assert numbers["notes"] == [f"{main.parent / 'triplets.rank1.jsonl'}: 1 line(s) could not be read and were "
                                f"left out"]
    assert kit.script_caption in kit.Page((project / "out/card.html").read_text()).text_of("rec-p6")
