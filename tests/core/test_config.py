"""Two-phase run-config validation and the JSON Schema built from installed components."""
import json

import pytest
from pydantic import BaseModel, ConfigDict, Field

from adamllm import hookimpl
from adamllm.config import ConfigError, json_schema, load_config, validate_config
from adamllm.specs import BackboneSpec, BenchmarkSpec, DomainSpec


class ToyBackboneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="hub id or local directory")
    max_length: int = 512


class ToyBenchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int | None = None


class Toy:
    @hookimpl
    def adamllm_backbones(self):
        return [BackboneSpec(name="toy", factory="builtins:dict", config=ToyBackboneConfig),
                BackboneSpec(name="toy2", factory="builtins:dict", config=ToyBackboneConfig)]

    @hookimpl
    def adamllm_benchmarks(self):
        return [BenchmarkSpec(name="bench_a", factory="builtins:dict", config=ToyBenchConfig),
                BenchmarkSpec(name="bench_b", factory="builtins:dict", config=ToyBenchConfig)]

    @hookimpl
    def adamllm_domains(self):
        return [DomainSpec(name="toydomain", benchmarks=("bench_a",))]


@pytest.fixture
def pm(plugin_manager, register_plugin):
    register_plugin(Toy(), "toy", distribution="adamllm-toy")
    return plugin_manager


def test_valid_config_validates_each_section_with_its_model(pm, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "output_dir: out\nseed: 3\nstages: [train, evaluate]\ndomain: {type: toydomain}\n"
        "backbone: {type: toy, model: some/dir, max_length: 64}\n"
        "benchmarks: [{type: bench_a, limit: 2}, {type: bench_b}]\n"
    )
    cfg = load_config(path, pm)
    assert cfg.output_dir == tmp_path / "out"  # relative to the config file
    assert cfg.backbone.options == ToyBackboneConfig(model="some/dir", max_length=64)
    assert [b.options.limit for b in cfg.benchmarks] == [2, None]
    assert cfg.stages == ["train", "evaluate"] and cfg.seed == 3


@pytest.mark.parametrize(
    "yaml_text, location, message",
    [
        ("backbone: {type: nope, model: m}", "backbone.type", "unknown backbone 'nope'; installed backbones: toy, toy2"),
        ("backbone: {type: toy, model: m, max_length: lots}", "backbone.max_length", "valid integer"),
        ("backbone: {type: toy, model: m, colour: red}", "backbone.colour", "Extra inputs are not permitted"),
        ("backbone: {type: toy}", "backbone.model", "Field required"),
        ("benchmarks: [{type: bench_a}, {type: bench_a, limt: 1}]", "benchmarks.1.limt", "Extra inputs"),
        ("seed: x", "seed", "valid integer"),
        ("stages: [cook]", "stages.0", "Input should be"),
        ("trainers: {type: x}", "trainers", "Extra inputs"),
        ("domain: {type: toydomain, extra: 1}", "domain.extra", "Extra inputs are not permitted"),
        ("domain: {type: toydomain, limit: 0}", "domain.limit", "greater than or equal to 1"),
        ("data: {trian: mix.jsonl}", "data.trian", "Input should be"),
    ],
)
def test_invalid_config_names_section_and_field(pm, yaml_text, location, message):
    import yaml

    data = {"output_dir": "out", **yaml.safe_load(yaml_text)}
    with pytest.raises(ConfigError) as info:
        validate_config(data, pm)
    locations = dict(info.value.problems)
    assert location in locations, info.value.problems
    assert message in locations[location]


def test_all_problems_reported_at_once(pm):
    data = {"output_dir": "o", "backbone": {"type": "toy", "model": 1, "x": 2}, "benchmarks": [{"type": "zzz"}]}
    with pytest.raises(ConfigError) as info:
        validate_config(data, pm)
    assert {loc for loc, _ in info.value.problems} == {"backbone.model", "backbone.x", "benchmarks.0.type"}


def test_missing_file_and_bad_yaml(pm, tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml", pm)
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match=r"\(yaml\)"):
        load_config(bad, pm)


def test_json_schema_is_a_valid_schema_with_discriminated_components(pm):
    schema = json_schema(pm)
    json.dumps(schema)
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"output_dir": "o", "backbone": {"type": "toy", "model": "m"}})
    assert not validator.is_valid({"output_dir": "o", "backbone": {"type": "toy", "model": "m", "bad": 1}})
    assert not validator.is_valid({"output_dir": "o", "backbone": {"type": "unknown", "model": "m"}})
    assert validator.is_valid({"output_dir": "o", "benchmarks": [{"type": "bench_a", "limit": 1}, {"type": "bench_b"}]})
    # data: a path or hub id, or a mapping with the fields that stage takes
    assert validator.is_valid({"output_dir": "o", "data": {"train": "mix.jsonl", "synthesize": {
        "path": "pairs.json", "images": "images"}, "tune": {"path": "seeds", "images": "flat"}}})
    assert validator.is_valid({"output_dir": "o", "data": {"train": {
        "hub": "AdaptLLM/biomed-visual-instructions", "config": "image_caption_and_synthetic_task",
        "data_files": ["a.json"], "split": "train", "images": "images"}}})
    assert not validator.is_valid({"output_dir": "o", "data": {"train": {"hub": "a/b", "imgs": "x"}}})
    assert not validator.is_valid({"output_dir": "o", "data": {"filter": {"path": "t.jsonl", "images": "x"}}})
    assert not validator.is_valid({"output_dir": "o", "data": {"trian": "mix.jsonl"}})


def test_component_whose_config_model_cannot_import(plugin_manager, register_plugin):
    class Broken:
        @hookimpl
        def adamllm_trainers(self):
            from adamllm.specs import TrainerSpec

            return [TrainerSpec(name="broken", factory="x:y", config="no_such_module_abc:Config")]

    register_plugin(Broken(), "broken", distribution="adamllm-broken")
    with pytest.raises(ConfigError) as info:
        validate_config({"output_dir": "o", "trainer": {"type": "broken"}}, plugin_manager)
    (location, message), = info.value.problems
    assert location == "trainer.type" and "adamllm-broken" in message and "no_such_module_abc" in message


def test_missing_local_inputs_are_errors_hub_ids_are_not(builtin_plugin_manager, tmp_path):
    """`config validate` does not call a config valid whose data file, model folder or benchmark
    source is missing; a hub id (OWNER/NAME) stays a hub id, and a `tiny` model folder may be missing."""
    pm = builtin_plugin_manager
    for folder in ("ckpt", "data"):  # OWNER/NAME where OWNER is a folder here names a path, not a hub id
        (tmp_path / folder).mkdir()
    data = {"output_dir": "out", "backbone": {"type": "qwen2_vl", "model": "ckpt/missing"},
            "benchmarks": [{"type": "slake", "source": "data/slake_missing"}],
            "data": {"train": "mix/missing.jsonl", "evaluate": "gone"}}
    with pytest.raises(ConfigError) as info:
        validate_config(data, pm, base_dir=tmp_path)
    problems = dict(info.value.problems)
    assert set(problems) == {"backbone", "benchmarks.0.source", "data.train", "data.evaluate"}, problems
    assert f"no such file or folder: {tmp_path / 'mix' / 'missing.jsonl'}" in problems["data.train"]
    cfg = validate_config({"output_dir": "out", "backbone": {"type": "qwen2_vl", "model": "Qwen/Qwen2-VL-2B-Instruct"},
                           "benchmarks": [{"type": "slake", "source": "AdaptLLM/biomed-VQA-benchmark"}],
                           "data": {"train": "AdaptLLM/biomed-visual-instructions"}}, pm, base_dir=tmp_path)
    assert cfg.data["train"] == "AdaptLLM/biomed-visual-instructions"
    assert cfg.backbone.options.model == "Qwen/Qwen2-VL-2B-Instruct"
    cfg = validate_config({"output_dir": "out", "backbone": {"type": "qwen2_vl", "model": "base", "tiny": "tiny"}},
                          pm, base_dir=tmp_path)
    assert cfg.backbone.options.model == str(tmp_path / "base")


def test_duplicate_yaml_keys_are_errors(pm, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("output_dir: out\nseed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'seed' \(first on line 2\)"):
        load_config(path, pm)


def test_data_entries_as_a_path_or_a_mapping(pm, tmp_path):
    """``data.<stage>``: a string (path or hub id), or a mapping whose paths are relative to the
    config file; ``config.data`` keeps each location, ``config.data_inputs`` the whole entry."""
    for folder in ("released/images", "unzipped", "seeds", "repo"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "released" / "image_caption_pairs.json").write_text("[]")
    path = tmp_path / "run.yaml"
    path.write_text("output_dir: out\ndata:\n"
                    "  synthesize: {path: released/image_caption_pairs.json, images: unzipped}\n"
                    "  tune: seeds\n"
                    "  train: {hub: AdaptLLM/biomed-visual-instructions, config: image_caption_and_synthetic_task}\n"
                    "  evaluate: {path: repo}\n")
    cfg = load_config(path, pm)
    assert cfg.data == {"synthesize": str(tmp_path / "released" / "image_caption_pairs.json"),
                        "tune": str(tmp_path / "seeds"), "train": "AdaptLLM/biomed-visual-instructions",
                        "evaluate": str(tmp_path / "repo")}
    synthesize, train = cfg.data_inputs["synthesize"], cfg.data_inputs["train"]
    assert synthesize.images == str(tmp_path / "unzipped") and cfg.data_inputs["tune"].options == {}
    assert train.hub == "AdaptLLM/biomed-visual-instructions" and train.config == "image_caption_and_synthetic_task"
    # fingerprint entries: the string form's as before, a mapping's field by field
    assert cfg.data_inputs["tune"].fingerprint("tune") == {"data.tune": str(tmp_path / "seeds")}
    assert cfg.data_inputs["evaluate"].fingerprint("evaluate") == {"data.evaluate": str(tmp_path / "repo")}
    assert train.fingerprint("train") == {"data.train.hub": "AdaptLLM/biomed-visual-instructions",
                                          "data.train.config": "image_caption_and_synthetic_task"}


@pytest.mark.parametrize("entry, location, message", [
    ({"train": {"path": "repo", "imgs": "x"}}, "data.train.imgs",
     "unknown key; data.train takes path, hub, images, config, data_files, split"),
    ({"filter": {"path": "repo", "images": "repo"}}, "data.filter.images", "unknown key; data.filter takes path"),
    ({"train": {"path": "repo", "hub": "AdaptLLM/x"}}, "data.train.hub", "give either path or hub, not both"),
    ({"synthesize": {"hub": "AdaptLLM/x"}}, "data.synthesize.hub", "unknown key; data.synthesize takes path, images"),
    ({"train": {"config": "x"}}, "data.train.path", "missing: give path (a local file or folder) or hub (a hub id)"),
    ({"train": {"path": "gone"}}, "data.train.path", "no such file or folder: {tmp}/gone (paths are relative"),
    ({"synthesize": {"path": "pairs.json", "images": "gone"}}, "data.synthesize.images",
     "no such folder: {tmp}/gone (paths are relative to the config file)"),
    ({"train": {"path": "pairs.json", "config": "x"}}, "data.train.config",
     "picks part of a dataset (a hub dataset or a local dataset folder); data.train.path is a file"),
    ({"train": {"hub": "not a hub id"}}, "data.train.hub", "expected a hub id OWNER/NAME"),
    ({"train": {"hub": "a/b", "split": 3}}, "data.train.split", "Input should be a valid string"),
    ({"train": {"hub": "a/b", "config": ""}}, "data.train.config", "is empty"),
    ({"train": 3}, "data.train", "expected a path, a hub id or a mapping of path, hub, images"),
    ({"synthesize": "gone.json"}, "data.synthesize", "no such file or folder"),
])
def test_bad_data_entries_name_the_stage_and_field(pm, tmp_path, entry, location, message):
    (tmp_path / "repo").mkdir()
    (tmp_path / "pairs.json").write_text("[]")
    with pytest.raises(ConfigError) as info:
        validate_config({"output_dir": "out", "data": entry}, pm, base_dir=tmp_path)
    problems = dict(info.value.problems)
    assert list(problems) == [location], info.value.problems
    assert message.format(tmp=tmp_path) in problems[location]


def test_config_validate_names_a_bad_data_field(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "run.yaml"
    path.write_text("output_dir: out\ndata: {train: {path: mix.jsonl, hub: AdaptLLM/x, imgs: y}}\n")
    result = subprocess.run([sys.executable, "-m", "adamllm.cli", "--no-plugins", "config", "validate", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "data.train.imgs: unknown key; data.train takes path, hub, images, config, data_files, split" \
        in result.stderr, result.stderr


def test_a_domains_image_folder_resolves_against_the_config_and_must_exist(pm, tmp_path):
    (tmp_path / "images").mkdir()
    cfg = validate_config({"output_dir": "o", "domain": {"type": "toydomain", "images": "images"}}, pm,
                          base_dir=tmp_path)
    assert cfg.domain.options.images == str(tmp_path / "images")
    with pytest.raises(ConfigError) as info:
        validate_config({"output_dir": "o", "domain": {"type": "toydomain", "images": "gone"}}, pm, base_dir=tmp_path)
    (location, message), = info.value.problems
    assert location == "domain.images" and f"no such folder: {tmp_path / 'gone'}" in message
