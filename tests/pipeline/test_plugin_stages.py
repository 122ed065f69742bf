"""A third-party package, installed through an entry point, runs synthesize → filter → compose.

The package is written here (not built in): a distribution folder with an ``entry_points.txt`` on
``PYTHONPATH`` is what ``pip install`` leaves behind, so ``adamllm run`` in a subprocess finds it
exactly as it finds any plugin. Its components follow ``adamllm.contracts``; core's stages do the
reading, resuming and writing.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adamllm.testing.data import write_pairs
from adamllm.testing.distributions import fake_distribution
from adamllm.testing.stage_contract import ComposerContract, FilterContract, SynthesizerContract

PLUGIN = '''
"""A test plugin: colour questions from captions, a word-overlap filter, a caption+task composer."""
import re

from pydantic import BaseModel, ConfigDict

from adamllm import hookimpl
from adamllm.records import TaskTriplet, TrainingExample, Verdict
from adamllm.specs import ComposerSpec, FilterSpec, SynthesizerSpec

COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")


class SynthOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    skip_colour: str = "black"   # pairs of this colour yield no triplet


class ColourSynth:
    batch_size = 3

    def __init__(self, config):
        self.config = config

    def synthesize(self, pairs, ctx):
        out = []
        for pair in pairs:
            colour = next((c for c in COLOURS if re.search(rf"\\b{c}\\b", pair.caption)), None)
            if colour is None or colour == self.config.skip_colour:
                out.append(None)
                continue
            out.append(TaskTriplet(id=pair.id, image=pair.image, instruction="What colour is the shape?",
                                   precise=colour, informative=f"The caption reads: {pair.caption} So it is {colour}.",
                                   raw=f"<gen {pair.id}>"))
        return out


class FilterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reject_word: str = "zzz"


class WordFilter:
    def __init__(self, config):
        self.config = config

    def judge(self, triplets, ctx):
        return [Verdict(id=t.id, verdict="no" if self.config.reject_word in t.precise
                        else "yes" if t.precise in t.informative else "open", raw=t.precise)
                for t in triplets]


class PairComposer:
    stats = None

    def compose(self, pairs, triplets, verdicts, ctx):
        branches = {"caption+task": 0, "caption only": 0, "dropped": 0}
        for pair in pairs:
            if pair.id not in triplets:
                branches["dropped"] += 1
                continue
            messages = [{"role": "user", "content": "<image>" + pair.instruction},
                        {"role": "assistant", "content": pair.caption}]
            verdict = verdicts.get(pair.id)
            if verdict is not None and verdict.verdict == "yes":
                triplet = triplets[pair.id]
                messages += [{"role": "user", "content": triplet.instruction},
                             {"role": "assistant", "content": triplet.precise}]
                branches["caption+task"] += 1
            else:
                branches["caption only"] += 1
            yield TrainingExample(id=pair.id, messages=messages, images=[pair.image])
        self.stats = {"branches": branches}


@hookimpl
def adamllm_synthesizers():
    return [SynthesizerSpec(name="colour", factory=ColourSynth, config=SynthOptions, description="test")]


@hookimpl
def adamllm_filters():
    return [FilterSpec(name="words", factory=WordFilter, config=FilterOptions, description="test")]


@hookimpl
def adamllm_composers():
    return [ComposerSpec(name="pairs", factory=PairComposer, description="test")]
'''


def install_test_package(site: Path) -> None:
    """What pip leaves in site-packages: the module and a dist-info folder with the entry point."""
    fake_distribution(site, "adamllm-test-stages", version="0.1",
                      modules={"adamllm_test_stages.__init__": "", "adamllm_test_stages.plugin": PLUGIN},
                      entry_points={"adamllm-test-stages": "adamllm_test_stages.plugin"})


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    install_test_package(site)
    return site


def run_cli(site: Path, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "ADAMLLM_STRICT_PLUGINS": "1"}
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_entry_point_plugin_runs_synthesize_filter_compose(site, tmp_path):
    pairs_file = write_pairs(tmp_path / "pairs", n=8, seed=3)  # a pretty-printed JSON array, as released
    pairs = json.loads(pairs_file.read_text())
    config = tmp_path / "run.yaml"
    config.write_text(textwrap.dedent("""\
        output_dir: out
        stages: [synthesize, filter, compose]
        data: {synthesize: pairs/image_caption_pairs.json}
        synthesizer: {type: colour, skip_colour: black}
        filter: {type: words}
        composer: {type: pairs}
        """))
    listed = run_cli(site, "components", "list", "--kind", "composer")
    assert "pairs" in listed.stdout and "adamllm-test-stages 0.1" in listed.stdout, listed.stderr

    first = run_cli(site, "run", str(config))
    assert first.returncode == 0, first.stderr[-3000:]
    out = tmp_path / "out"
    triplets = lines(out / "synthesize" / "triplets.jsonl")
    captions = [p["messages"][1]["content"] for p in pairs]
    expected = [c for c in captions if " black " not in f" {c} "]
    assert [t["informative"].split("reads: ")[1].rsplit(" So", 1)[0] for t in triplets] == expected
    assert all(t["raw"].startswith("<gen ") and Path(t["image"]).is_absolute() for t in triplets)
    ids = [t["id"] for t in triplets]
    assert len(set(ids)) == len(ids) == len(expected)
    stats = json.loads((out / "synthesize" / "stats.json").read_text())
    assert stats["pairs_read"] == 8 and stats["triplets"] == len(expected)
    assert stats["no_triplet"] == 8 - len(expected)

    verdicts = lines(out / "filter" / "verdicts.jsonl")
    assert [v["id"] for v in verdicts] == ids and {v["verdict"] for v in verdicts} == {"yes"}
    assert json.loads((out / "filter" / "stats.json").read_text())["keep_rate"] == 1.0

    mix = lines(out / "compose" / "mix.jsonl")
    assert [m["id"] for m in mix] == ids  # pairs without a triplet are dropped
    assert all(len(m["messages"]) == 4 and len(m["images"]) == 1 for m in mix)
    compose_stats = json.loads((out / "compose" / "stats.json").read_text())
    assert compose_stats["branches"] == {"caption+task": len(ids), "caption only": 0, "dropped": 8 - len(ids)}
    assert "fingerprint" in json.loads((out / "compose" / "_done.json").read_text())
    from datasets import load_from_disk

    dataset = load_from_disk(str(out / "compose" / "dataset"))  # the same mix, as a `datasets` folder
    assert dataset["id"] == ids and dataset[0]["messages"] == mix[0]["messages"] and dataset["images"][1] == mix[1]["images"]

    again = run_cli(site, "run", str(config))
    assert again.returncode == 0 and again.stdout.count("already done") == 3, again.stdout

    # a changed filter option: filter and compose rerun and say why, synthesize is kept
    changed = run_cli(site, "run", str(config), f"filter.reject_word={triplets[0]['precise']}")
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert "[synthesize] already done" in changed.stdout
    assert f"filter.reject_word: zzz -> {triplets[0]['precise']}" in changed.stdout
    assert "[compose] rerunning from scratch" in changed.stdout and "stage 'filter' ran before it" in changed.stdout
    rejected = {v["id"] for v in lines(out / "filter" / "verdicts.jsonl") if v["verdict"] == "no"}
    assert rejected and all(len(m["messages"]) == 2 for m in lines(out / "compose" / "mix.jsonl")
                            if m["id"] in rejected)


def test_bad_override_and_unknown_data_key_are_config_errors(site, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: out\nstages: [synthesize]\nsynthesizer: {type: colour, skip_colour: red}\n")
    bad = run_cli(site, "run", str(config), "synthesizer.skip_colour.deep=1")
    assert bad.returncode == 1 and "synthesizer.skip_colour is not a section" in bad.stderr
    wrong = run_cli(site, "run", str(config), "synthesizer.colour=red")
    assert wrong.returncode == 1 and "synthesizer.colour: Extra inputs are not permitted" in wrong.stderr
    typo = run_cli(site, "run", str(config), "data.trian=x.jsonl")
    assert typo.returncode == 1 and "data.trian" in typo.stderr
    no_pairs = run_cli(site, "run", str(config))
    assert no_pairs.returncode == 1 and "data.synthesize" in no_pairs.stderr


# -- the contract suites, run against the same components in-process ----------------------
@pytest.fixture
def test_plugin_module(site, monkeypatch):
    monkeypatch.syspath_prepend(str(site))
    import importlib

    return importlib.import_module("adamllm_test_stages.plugin")


class _InProcess:
    @pytest.fixture
    def plugin_manager_for_contract(self, test_plugin_module):
        from adamllm.registry import PluginManager

        pm = PluginManager(load_entrypoints=False, strict=True)
        pm.register(test_plugin_module, "adamllm-test-stages", distribution="adamllm-test-stages")
        return pm


class TestColourSynthesizer(_InProcess, SynthesizerContract):
    component = "colour"


class TestWordFilter(_InProcess, FilterContract):
    component = "words"


class TestPairComposer(_InProcess, ComposerContract):
    component = "pairs"


def test_domain_sources_reach_the_stage_as_typed_pairs(tmp_path):
    """The example domain declares a packaged JSONL source; core reads it into ImageCaptionPair
    records with absolute, confined image paths and stable ids; ``data.synthesize`` replaces it."""
    from adamllm.config import validate_config
    from adamllm.records import ImageCaptionPair
    from adamllm.registry import PluginManager
    from adamllm.runner import StageContext

    pm = PluginManager(strict=True)
    cfg = validate_config({"output_dir": str(tmp_path), "domain": {"type": "shapes", "limit": 3}}, pm)
    pairs = list(StageContext("synthesize", cfg, pm).pairs())
    assert len(pairs) == 3 and all(isinstance(p, ImageCaptionPair) for p in pairs)
    assert pairs[0].caption == "A red square on a white background."
    assert pairs[0].instruction == "Describe the image." and Path(pairs[0].image).is_file()
    again = [p.id for p in StageContext("synthesize", cfg, pm).pairs()]
    assert again == [p.id for p in pairs] and len(set(again)) == 3

    own = write_pairs(tmp_path / "own", n=2, as_json_array=False)
    cfg = validate_config({"output_dir": str(tmp_path), "domain": {"type": "shapes"},
                           "data": {"synthesize": str(own)}}, pm)
    assert [p.caption for p in StageContext("synthesize", cfg, pm).pairs()] == \
        [json.loads(line)["messages"][1]["content"] for line in own.read_text().splitlines()]


def test_a_pair_whose_image_leaves_its_folder_is_an_error_naming_the_record(tmp_path):
    from adamllm.io import DataError
    from adamllm.pairs import read_pairs

    path = write_pairs(tmp_path, n=3)
    records = json.loads(path.read_text())
    records[2]["images"] = ["../../etc/passwd"]
    path.write_text(json.dumps(records, indent=2))
    start = path.read_text().splitlines().index("  {", 2 * 13 - 1) + 1  # the third record's opening line
    with pytest.raises(DataError, match=rf"{path}:{start}: path '../../etc/passwd' escapes its root"):
        list(read_pairs(path))
