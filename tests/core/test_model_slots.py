"""Model slots: a component's own model, a nested backbone section validated with the run config."""
import pytest
from pydantic import BaseModel, ConfigDict

from adamllm import hookimpl
from adamllm.backbone import ModelSlot
from adamllm.config import ConfigError, validate_config
from adamllm.runner import StageContext
from adamllm.specs import FilterSpec


class JudgeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: ModelSlot
    shots: int = 6


class Judges:
    @hookimpl
    def adamllm_filters(self):
        return [FilterSpec(name="judge", factory="builtins:dict", config=JudgeOptions)]


@pytest.fixture
def pm(builtin_plugin_manager):
    builtin_plugin_manager.register(Judges(), "judges")
    return builtin_plugin_manager


def test_slot_is_validated_with_the_backbone_options_model(pm, tmp_path):
    with pytest.raises(ConfigError) as info:
        validate_config({"output_dir": "o", "filter": {"type": "judge", "model": {
            "type": "causal_lm", "model": "m", "dtype": "int3", "colour": 1}}}, pm)
    assert {loc for loc, _ in info.value.problems} == {"filter.model.dtype", "filter.model.colour"}
    with pytest.raises(ConfigError, match=r"filter.model.type: unknown backbone 'gpt9'"):
        validate_config({"output_dir": "o", "filter": {"type": "judge", "model": {"type": "gpt9", "model": "m"}}}, pm)


def test_slot_paths_resolve_against_the_config_and_tiny_builds_on_use(pm, tmp_path):
    cfg = validate_config({"output_dir": "o", "filter": {"type": "judge", "model": {
        "type": "causal_lm", "model": "models/judge", "tiny": "tiny", "max_length": 256}}}, pm, base_dir=tmp_path)
    slot = cfg.filter.options.model
    assert slot.options.model == str(tmp_path / "models" / "judge") and slot.options.max_length == 256
    adapter = StageContext("filter", cfg, pm).build_model(slot)
    assert (tmp_path / "models" / "judge" / "config.json").exists()  # built on first use
    assert adapter.family == "causal_lm"
    from adamllm.backbone import GenerationSettings

    (text,) = adapter.generate([[{"role": "user", "content": "Is it?"}]],
                               settings=GenerationSettings(max_new_tokens=2, min_new_tokens=2))
    assert isinstance(text, str)


def test_an_existing_relative_model_folder_is_taken_from_the_config_folder_else_kept_as_a_hub_id(pm, tmp_path):
    (tmp_path / "ckpt").mkdir()
    for model, expected in (("ckpt", str(tmp_path / "ckpt")), ("meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-8B")):
        cfg = validate_config({"output_dir": "o", "filter": {"type": "judge", "model": {"type": "causal_lm", "model": model}}},
                              pm, base_dir=tmp_path)
        assert cfg.filter.options.model.options.model == expected
