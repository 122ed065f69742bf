"""Discovery, isolation, allow/block lists and registries of the plugin manager."""
import sys

import pytest

from adamllm import hookimpl
from adamllm.registry import DuplicateComponentError, PluginError, PluginManager, UnknownComponentError
from adamllm.specs import BackboneSpec, BenchmarkSpec, DomainSpec, SourceSpec
from adamllm.testing.distributions import fake_distribution

GOOD = """
from adamllm import hookimpl
from adamllm.specs import DomainSpec

@hookimpl
def adamllm_domains():
    return [DomainSpec(name="{domain}", description="d")]
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("ADAMLLM_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("ADAMLLM_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("ADAMLLM_DISABLE_PLUGINS", raising=False)
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("fakeplug_")]:
        del sys.modules[mod]


def test_builtins_load_through_entry_points():
    pm = PluginManager(no_plugins=True)
    builtins = [i for i in pm.plugins.values() if i.builtin]
    assert builtins and all(i.status == "active" and i.distribution == "adamllm" for i in builtins)


def test_third_party_plugin_is_discovered_and_attributed(site):
    fake_distribution(site, "adamllm-good", version="1.2.3", modules={"fakeplug_good": GOOD.format(domain="toy")},
                      entry_points={"adamllm-good": "fakeplug_good"})
    pm = PluginManager()
    registered = pm.get("domain", "toy")
    assert registered.plugin.distribution == "adamllm-good"
    assert registered.provider == "adamllm-good 1.2.3"
    assert pm.plugins["adamllm-good"].components == {"domain": ["toy"]}


def test_broken_plugin_is_isolated_then_strict_then_disabled(site):
    fake_distribution(site, "adamllm-broken", modules={"fakeplug_broken": "raise ImportError('no such lib')"},
                      entry_points={"adamllm-broken": "fakeplug_broken"})
    fake_distribution(site, "adamllm-good", modules={"fakeplug_good2": GOOD.format(domain="toy2")},
                      entry_points={"adamllm-good": "fakeplug_good2"})
    warnings = []
    pm = PluginManager(warn=warnings.append)
    assert pm.plugins["adamllm-broken"].status == "failed"
    assert pm.plugins["adamllm-broken"].error == "ImportError: no such lib"
    assert len(warnings) == 1 and "adamllm-broken" in warnings[0]
    assert "toy2" in pm.components("domain")  # the rest still load
    with pytest.raises(UnknownComponentError, match="failed to load: .*adamllm-broken.*no such lib"):
        pm.get("domain", "missing")
    with pytest.raises(PluginError, match="adamllm-broken"):
        PluginManager(strict=True)
    blocked = PluginManager(block=["adamllm-broken"], warn=warnings.append)
    assert blocked.plugins["adamllm-broken"].status == "disabled" and len(warnings) == 1


def test_allow_list_and_no_plugins(site, monkeypatch):
    fake_distribution(site, "adamllm-a", modules={"fakeplug_a": GOOD.format(domain="a")},
                      entry_points={"adamllm-a": "fakeplug_a"})
    fake_distribution(site, "adamllm-b", modules={"fakeplug_b": GOOD.format(domain="b")},
                      entry_points={"adamllm-b": "fakeplug_b"})
    monkeypatch.setenv("ADAMLLM_LOAD_PLUGINS", "adamllm-b")
    pm = PluginManager()
    assert pm.plugins["adamllm-a"].status == "disabled"
    assert set(pm.components("domain")) >= {"b"} and "a" not in pm.components("domain")
    monkeypatch.setenv("ADAMLLM_LOAD_PLUGINS", "")  # empty = none
    pm = PluginManager()
    assert {i.status for i in pm.plugins.values() if not i.builtin} == {"disabled"}
    assert all(i.status == "active" for i in pm.plugins.values() if i.builtin)
    monkeypatch.delenv("ADAMLLM_LOAD_PLUGINS")
    assert PluginManager(no_plugins=True).plugins["adamllm-a"].status == "disabled"


def test_duplicate_component_names_both_distributions(plugin_manager):
    class One:
        @hookimpl
        def adamllm_backbones(self):
            return [BackboneSpec(name="same", factory="x:y")]

    class Two:
        @hookimpl
        def adamllm_backbones(self):
            return [BackboneSpec(name="same", factory="x:z")]

    plugin_manager.register(One(), "one", distribution="adamllm-one")
    plugin_manager.register(Two(), "two", distribution="adamllm-two")
    with pytest.raises(DuplicateComponentError, match="adamllm-one.*adamllm-two"):
        plugin_manager.components("backbone")


def test_misspelled_hook_is_reported(plugin_manager):
    class Typo:
        @hookimpl
        def adamllm_backbone(self):  # singular: not a hook
            return []

    with pytest.raises(PluginError, match="adamllm_backbone"):
        plugin_manager.register(Typo(), "typo")


def test_hook_returning_wrong_record_type_fails_that_plugin(plugin_manager):
    class Wrong:
        @hookimpl
        def adamllm_backbones(self):
            return [DomainSpec(name="oops")]

    plugin_manager.register(Wrong(), "wrong")
    with pytest.raises(PluginError, match="expected BackboneSpec"):
        plugin_manager.components("backbone")


@pytest.mark.parametrize("bad", ["Upper", "with space", "", "-lead"])
def test_component_names_are_validated(bad):
    with pytest.raises(ValueError, match="invalid backbone name"):
        BackboneSpec(name=bad, factory="x:y")


def test_factory_and_config_are_lazy_strings(plugin_manager, register_plugin):
    class Lazy:
        @hookimpl
        def adamllm_benchmarks(self):
            return [BenchmarkSpec(name="lazy", factory="collections:OrderedDict", config="adamllm.config:Section")]

    register_plugin(Lazy(), "lazy")
    spec = plugin_manager.spec("benchmark", "lazy")
    from adamllm.config import Section

    assert spec.load_config_model() is Section
    built = spec.build(Section(type="t"))
    assert list(built) == ["type"]  # OrderedDict(model) iterates its fields


def test_domain_spec_carries_sources_and_benchmarks(register_plugin, plugin_manager):
    class Dom:
        @hookimpl
        def adamllm_domains(self):
            return [DomainSpec(name="d", benchmarks=("b1",), sources=(SourceSpec("pairs", "sharegpt", "x.jsonl"),))]

    register_plugin(Dom(), "dom")
    spec = plugin_manager.spec("domain", "d")
    assert spec.benchmarks == ("b1",) and spec.sources[0].format == "sharegpt"
