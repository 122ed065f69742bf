"""A third-party plugin that takes a built-in's name (its entry point's or a component's) never stops
the CLI: it is marked failed, naming both plugins and both distributions, and the built-in works."""
import json
import os
import subprocess
import sys

import pytest

from adamllm.registry import DuplicateComponentError, PluginError, PluginManager
from adamllm.testing.distributions import fake_distribution

TRAINER_NAMED_LIKE_SFT = """
from adamllm import hookimpl
from adamllm.specs import TrainerSpec

@hookimpl
def adamllm_trainers():
    return [TrainerSpec(name="evil_trainer", factory="x:y")]
"""

BACKBONE_NAMED_LIKE_QWEN = """
from adamllm import hookimpl
from adamllm.specs import BackboneSpec, DomainSpec

@hookimpl
def adamllm_domains():
    return [DomainSpec(name="evil_domain")]

@hookimpl
def adamllm_backbones():
    return [BackboneSpec(name="qwen2_vl", factory="x:y")]
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("ADAMLLM_STRICT_PLUGINS", "ADAMLLM_LOAD_PLUGINS", "ADAMLLM_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("clashplug_")]:
        del sys.modules[mod]


def _entry_point_clash(site):
    fake_distribution(site, "adamllm-evil", version="6.6.6", modules={"clashplug_sft": TRAINER_NAMED_LIKE_SFT},
                      entry_points={"adamllm.sft": "clashplug_sft"})


def _component_clash(site):
    fake_distribution(site, "adamllm-shadow", version="0.2", modules={"clashplug_qwen": BACKBONE_NAMED_LIKE_QWEN},
                      entry_points={"adamllm-shadow": "clashplug_qwen"})


def _by_distribution(pm):
    return {info.distribution: info for info in pm.plugins.values() if info.name in ("adamllm.sft", "adamllm-shadow")}


def test_entry_point_named_like_a_builtin_fails_alone(site):
    _entry_point_clash(site)
    warnings = []
    pm = PluginManager(warn=warnings.append)
    plugins = _by_distribution(pm)
    assert plugins["adamllm"].status == "active" and plugins["adamllm"].builtin
    evil = plugins["adamllm-evil"]
    assert evil.status == "failed" and evil.name == "adamllm.sft"
    assert "two plugins are named 'adamllm.sft'" in evil.error
    assert "distribution adamllm " in evil.error and "distribution adamllm-evil 6.6.6" in evil.error
    assert len(warnings) == 1 and "adamllm-evil" in warnings[0]
    assert "ADAMLLM_DISABLE_PLUGINS=adamllm-evil" in warnings[0]  # its name would disable the built-in too
    assert pm.get("trainer", "sft").plugin.distribution == "adamllm"
    assert "evil_trainer" not in pm.components("trainer")
    with pytest.raises(PluginError, match="two plugins are named 'adamllm.sft'.*adamllm-evil"):
        PluginManager(strict=True)


def test_component_named_like_a_builtin_fails_that_plugin_only(site):
    _component_clash(site)
    warnings = []
    pm = PluginManager(warn=warnings.append)
    assert pm.get("backbone", "qwen2_vl").plugin.distribution == "adamllm"
    shadow = pm.plugins["adamllm-shadow"]
    assert shadow.status == "failed" and shadow.error.startswith("DuplicateComponentError: backbone 'qwen2_vl'")
    assert "(distribution adamllm)" in shadow.error and "(distribution adamllm-shadow)" in shadow.error
    assert "plugin 'adamllm.backbones'" in shadow.error and "plugin 'adamllm-shadow'" in shadow.error
    assert "evil_domain" not in pm.components("domain")  # a failed plugin contributes nothing
    assert shadow.components == {}
    assert len(warnings) == 1 and "adamllm-shadow" in warnings[0]
    with pytest.raises(DuplicateComponentError, match="adamllm-shadow"):
        PluginManager(strict=True).components("backbone")


@pytest.mark.parametrize("how", ["block", "allow", "no_plugins"])
def test_disabled_plugins_are_never_compared(site, monkeypatch, how):
    _entry_point_clash(site)
    _component_clash(site)
    if how == "block":
        monkeypatch.setenv("ADAMLLM_DISABLE_PLUGINS", "adamllm-evil,adamllm-shadow")
    elif how == "allow":
        monkeypatch.setenv("ADAMLLM_LOAD_PLUGINS", "adamllm-example-domain")
    warnings = []
    pm = PluginManager(warn=warnings.append, no_plugins=how == "no_plugins", strict=True)
    assert warnings == [] and not pm.failed()
    assert pm.get("backbone", "qwen2_vl").plugin.distribution == "adamllm"
    assert pm.get("trainer", "sft").plugin.distribution == "adamllm"
    statuses = {info.distribution: info.status for info in pm.plugins.values()}
    assert statuses["adamllm-evil"] == statuses["adamllm-shadow"] == "disabled"


def test_two_third_party_plugins_with_one_name_the_first_wins(site):
    source = "from adamllm import hookimpl\nfrom adamllm.specs import DomainSpec\n" \
             "@hookimpl\ndef adamllm_domains():\n    return [DomainSpec(name='{0}')]\n"
    fake_distribution(site, "adamllm-aaa", modules={"clashplug_a": source.format("dom_a")},
                      entry_points={"adamllm-same": "clashplug_a"})
    fake_distribution(site, "adamllm-bbb", modules={"clashplug_b": source.format("dom_b")},
                      entry_points={"adamllm-same": "clashplug_b"})
    warnings = []
    pm = PluginManager(warn=warnings.append)
    same = [info for info in pm.plugins.values() if info.name == "adamllm-same"]
    assert sorted(info.status for info in same) == ["active", "failed"] and len(warnings) == 1
    active = next(info for info in same if info.status == "active")
    assert set(pm.components("domain")) & {"dom_a", "dom_b"} == {active.components["domain"][0]}


def test_two_builtins_clashing_still_raise(site):
    # a distribution named "adamllm" is built-in; it shadows the real one's entry points here
    fake_distribution(site, "adamllm", version="0.1.0", entry_points={"adamllm.one": "clashplug_one",
                                                                   "adamllm.two": "clashplug_two"},
                      modules={"clashplug_one": BACKBONE_NAMED_LIKE_QWEN.replace("evil_domain", "d1"),
                               "clashplug_two": BACKBONE_NAMED_LIKE_QWEN.replace("evil_domain", "d2")})
    pm = PluginManager(no_plugins=True)
    with pytest.raises(DuplicateComponentError, match="backbone 'qwen2_vl' is registered twice"):
        pm.components("backbone")


def adamllm(*args, env=None, pythonpath=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ADAMLLM_")}
    environ.update(env or {})
    environ["PYTHONPATH"] = os.pathsep.join([str(pythonpath), environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "adamllm.cli", *args], capture_output=True, text=True,
                          env=environ, timeout=120)


def test_cli_goes_on_and_lists_them_as_failed(tmp_path):
    _entry_point_clash(tmp_path)
    _component_clash(tmp_path)
    result = adamllm("plugins", "list", "--json", pythonpath=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and result.stderr.count("\n") == 2
    rows = {row["distribution"]: row for row in json.loads(result.stdout)
            if row["name"] in ("adamllm.sft", "adamllm-shadow")}
    assert rows["adamllm"]["status"] == "active" and rows["adamllm"]["components"] == {"trainer": ["sft"]}
    assert rows["adamllm-evil"]["status"] == rows["adamllm-shadow"]["status"] == "failed"
    components = adamllm("components", "list", "--kind", "backbone", "--json", pythonpath=tmp_path)
    assert components.returncode == 0
    assert {r["name"]: r["plugin"] for r in json.loads(components.stdout)}["qwen2_vl"] == "adamllm.backbones"
    for args, env in [(("--no-plugins", "plugins", "list"), {}),
                      (("plugins", "list"), {"ADAMLLM_DISABLE_PLUGINS": "adamllm-evil,adamllm-shadow"}),
                      (("plugins", "list"), {"ADAMLLM_LOAD_PLUGINS": ""})]:
        quiet = adamllm(*args, env=env, pythonpath=tmp_path)
        assert quiet.returncode == 0 and quiet.stderr == "", (args, env, quiet.stderr)
    strict = adamllm("--strict-plugins", "plugins", "list", pythonpath=tmp_path)
    assert strict.returncode == 1 and strict.stderr.startswith("Error: ") and "adamllm-evil" in strict.stderr
