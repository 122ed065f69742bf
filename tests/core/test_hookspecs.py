"""Every hook spec is documented and exercised."""
import inspect

import pytest

from adamllm import hookimpl, hookspecs
from adamllm.specs import KINDS, SPEC_TYPES

HOOKS = sorted(name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("adamllm_"))
REGISTRATION_HOOKS = [f"adamllm_{kind}s" for kind in KINDS]
#: Hooks exercised elsewhere, with the test that does it.
TESTED_ELSEWHERE = {"adamllm_register_commands": "tests/core/test_cli.py::test_plugin_can_add_a_command"}


def test_every_hook_is_covered_by_a_test():
    assert set(HOOKS) == set(REGISTRATION_HOOKS) | set(TESTED_ELSEWHERE)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_an_example(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc.splitlines()[0]) > 20, f"{hook} needs a one-line summary"
    assert "Example" in doc or "::" in doc, f"{hook} needs an example"


@pytest.mark.parametrize("kind", KINDS)
def test_registration_hook_contributes_components(kind, plugin_manager, register_plugin):
    spec_type = SPEC_TYPES[kind]
    hook_name = f"adamllm_{kind}s"

    class Plugin:
        pass

    def impl(self):
        return [spec_type(name=f"my-{kind}", factory="builtins:dict", description=kind)]

    impl.__name__ = hook_name
    setattr(Plugin, hook_name, hookimpl(impl))
    info = register_plugin(Plugin(), "p", distribution="adamllm-p")
    assert plugin_manager.spec(kind, f"my-{kind}").description == kind
    assert info.components == {kind: [f"my-{kind}"]}
    assert plugin_manager.get(kind, f"my-{kind}").plugin.distribution == "adamllm-p"
