"""docs/plugins.md documents every hook, under its own heading, with its real signature.

Adding, renaming or changing a hook in ``core/hookspecs.py`` without updating the page fails here.
"""
from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from adamllm import hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
HOOK_NAME = re.compile(r"^adamllm_\w+$")


def hookspec_functions(module=hookspecs) -> dict[str, object]:
    return {
        name: fn
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if name.startswith("adamllm_") and fn.__module__ == module.__name__
    }


def doc_sections(text: str) -> dict[str, list[str]]:
    """``## `` heading -> the section's fenced blocks (each the block's text); fences respected."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    block: list[str] | None = None
    fence = ""
    for line in text.splitlines():
        stripped = line.strip()
        if block is not None:
            if stripped.startswith(fence) and stripped.strip("`~") == "":
                if current is not None:
                    current.append("\n".join(block))
                block = None
            else:
                block.append(line)
            continue
        match = re.match(r"^(`{3,}|~{3,})", stripped)
        if match:
            fence, block = match.group(1), []
            continue
        if line.startswith("## "):
            heading = line[3:].strip()
            assert heading not in sections, f"{DOC.name}: heading {heading!r} appears twice"
            current = sections[heading] = []
    assert block is None, f"{DOC.name}: unclosed code fence"
    return sections


def _norm(expr: str | None) -> str | None:
    """An annotation or default as canonical source text (whitespace and quoting normalised)."""
    return None if expr is None else ast.unparse(ast.parse(expr, mode="eval"))


def signature_from_source(source: str) -> tuple[str, list[tuple], str | None]:
    """Name, parameters (name, kind, annotation, default) and return annotation of a ``def`` line."""
    source = source.strip()
    if not source.endswith(":") and not source.endswith("..."):
        source += ": ..."
    elif source.endswith(":"):
        source += " ..."
    tree = ast.parse(source)
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef), source
    fn = tree.body[0]
    a = fn.args
    ann = lambda node: ast.unparse(node.annotation) if node.annotation is not None else None  # noqa: E731
    positional = [*a.posonlyargs, *a.args]
    defaults = [None] * (len(positional) - len(a.defaults)) + [ast.unparse(d) for d in a.defaults]
    params = []
    for i, arg in enumerate(positional):
        kind = "POSITIONAL_ONLY" if i < len(a.posonlyargs) else "POSITIONAL_OR_KEYWORD"
        params.append((arg.arg, kind, _norm(ann(arg)), _norm(defaults[i])))
    if a.vararg:
        params.append((a.vararg.arg, "VAR_POSITIONAL", _norm(ann(a.vararg)), None))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults):
        params.append((arg.arg, "KEYWORD_ONLY", _norm(ann(arg)), _norm(ast.unparse(default)) if default else None))
    if a.kwarg:
        params.append((a.kwarg.arg, "VAR_KEYWORD", _norm(ann(a.kwarg)), None))
    returns = _norm(ast.unparse(fn.returns)) if fn.returns is not None else None
    return fn.name, params, returns


def real_signature(fn) -> tuple[str, list[tuple], str | None]:
    """The same triple from ``inspect.signature`` (hookspecs.py has string annotations)."""
    sig = inspect.signature(fn)

    def text(annotation):
        if annotation is inspect.Parameter.empty:
            return None
        return _norm(annotation if isinstance(annotation, str) else inspect.formatannotation(annotation))

    params = [
        (p.name, p.kind.name, text(p.annotation),
         None if p.default is inspect.Parameter.empty else _norm(repr(p.default)))
        for p in sig.parameters.values()
    ]
    return fn.__name__, params, text(sig.return_annotation)


def documented_signatures(text: str) -> dict[str, str]:
    """Hook heading -> the ``def`` line of the section's first fenced block."""
    found = {}
    for heading, blocks in doc_sections(text).items():
        if not heading.startswith("adamllm_"):
            continue
        assert HOOK_NAME.match(heading), f"{DOC.name}: hook heading {heading!r} must be the bare hook name"
        assert blocks, f"{DOC.name}: section {heading!r} has no code block with the hook's signature"
        lines = [line for line in blocks[0].splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("def "), (
            f"{DOC.name}: the first code block of {heading!r} must be the one-line signature 'def {heading}(...) -> ...'"
        )
        found[heading] = lines[0]
    return found


HOOKS = hookspec_functions()
DOCUMENTED = documented_signatures(DOC.read_text(encoding="utf-8"))


def test_the_hook_list_is_not_empty():
    assert "adamllm_domains" in HOOKS and "adamllm_register_commands" in HOOKS


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_has_a_heading_and_its_real_signature(hook):
    assert hook in DOCUMENTED, f"docs/plugins.md has no '## {hook}' section: document the new hook"
    assert signature_from_source(DOCUMENTED[hook]) == real_signature(HOOKS[hook]), (
        f"docs/plugins.md documents {DOCUMENTED[hook]!r}; hookspecs.py has "
        f"def {hook}{inspect.signature(HOOKS[hook])}"
    )


def test_no_documented_hook_that_does_not_exist():
    unknown = sorted(set(DOCUMENTED) - set(HOOKS))
    assert not unknown, f"docs/plugins.md documents hooks that hookspecs.py does not have: {unknown}"


# -- the checker itself catches drift (a copy of the hookspecs module, changed) ----------------

def _changed_hookspecs(tmp_path, source: str):
    import importlib.util

    path = tmp_path / "changed_hookspecs.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("changed_hookspecs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return hookspec_functions(module)


def _drift(hooks: dict) -> list[str]:
    problems = sorted(set(hooks) ^ set(DOCUMENTED))
    for name in set(hooks) & set(DOCUMENTED):
        if signature_from_source(DOCUMENTED[name]) != real_signature(hooks[name]):
            problems.append(name)
    return problems


HOOKSPECS_SOURCE = Path(inspect.getsourcefile(hookspecs)).read_text(encoding="utf-8")


def test_the_checker_sees_no_drift_in_the_real_hookspecs(tmp_path):
    assert _drift(_changed_hookspecs(tmp_path, HOOKSPECS_SOURCE)) == []


@pytest.mark.parametrize(
    "old, new, expected",
    [
        # a hook renamed
        ("def adamllm_filters()", "def adamllm_judges()", ["adamllm_filters", "adamllm_judges"]),
        # a hook added
        ("@hookspec\ndef adamllm_domains()",
         "@hookspec\ndef adamllm_widgets() -> list:\n    pass\n\n\n@hookspec\ndef adamllm_domains()",
         ["adamllm_widgets"]),
        # a parameter added, renamed, or annotated differently
        ("def adamllm_domains() ->", "def adamllm_domains(config=None) ->", ["adamllm_domains"]),
        ("def adamllm_register_commands(cli: click.Group)", "def adamllm_register_commands(group: click.Group)",
         ["adamllm_register_commands"]),
        ("def adamllm_register_commands(cli: click.Group)", "def adamllm_register_commands(cli: click.Command)",
         ["adamllm_register_commands"]),
        # the return annotation changed
        ("def adamllm_composers() -> list[ComposerSpec]", "def adamllm_composers() -> tuple[ComposerSpec, ...]",
         ["adamllm_composers"]),
    ],
)
def test_the_checker_fails_when_a_hook_changes_without_the_doc(tmp_path, old, new, expected):
    assert HOOKSPECS_SOURCE.count(old) == 1, f"hookspecs.py changed; update this test's sample edit {old!r}"
    baseline = set(_drift(HOOKS))  # empty unless the doc itself is out of date (reported above)
    hooks = _changed_hookspecs(tmp_path, HOOKSPECS_SOURCE.replace(old, new))
    assert sorted(set(_drift(hooks)) - baseline) == sorted(expected)
