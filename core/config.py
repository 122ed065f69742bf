"""Run configs: a YAML file validated in two phases, with models derived from the stage table.

Phase one reads the layout (output directory, seed, stages, ``data``, and for every component
section its ``type``); phase two validates each section's remaining fields with the selected
component's own pydantic model, nested model slots included (``synthesizer.model``). Errors name
the section and the field. ``data`` entries (a path or hub id, or a mapping with an image folder
and dataset options) are checked by ``adamllm.inputs``, errors naming ``data.<stage>.<field>``.
Paths are resolved once, here: relative to the config file's folder (see ``adamllm.paths``).
``json_schema`` builds the same structure as a discriminated union over the installed components,
for editors. ``apply_overrides`` applies ``key=value`` arguments.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .backbone import ModelSlot
from .inputs import DataInput, stage_model, validate_data
from .paths import BASE_DIR, LocalFolder, resolve_local
from .registry import PluginManager, UnknownComponentError
from .stages import KIND_TABLE, SECTIONS, STAGES

StageName = Literal[STAGES]  # type: ignore[valid-type]


class ConfigError(ValueError):
    """A run config is invalid; ``problems`` lists ``(location, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        lines = [f"{where}invalid run config:"] + [f"  {loc}: {msg}" for loc, msg in problems]
        super().__init__("\n".join(lines))


class Section(BaseModel):
    """A component selection as written in YAML: ``{type: NAME, ...options}``."""

    model_config = ConfigDict(extra="allow")
    type: str


class Component(BaseModel):
    """A validated component selection: its name and its options (the component's own model)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    type: str
    options: Any = None


class DomainOptions(BaseModel):
    """Options of a domain section when the domain declares no options model of its own."""

    model_config = ConfigDict(extra="forbid")
    source: Optional[str] = Field(None, description="Which declared image-caption source to read (default: the first).")
    limit: Optional[int] = Field(None, ge=1, description="Read only the first N image-caption pairs.")
    images: Optional[LocalFolder] = Field(
        None, description="The folder the pairs' image paths resolve under (relative to the config file); default: "
                          "beside the pairs file, else its sibling images/ folder (the released layout).")


_LAYOUT_FIELDS: dict[str, Any] = {
    "output_dir": (Path, Field(description="Where every stage writes its files (relative to the config file).")),
    "seed": (int, Field(0, description="Seed for every random choice of the run.")),
    "stages": (list[StageName], Field(default_factory=lambda: list(STAGES),
                                      description="Stages to run; they run in pipeline order.")),
    "on_bad_record": (Literal["skip", "error"], Field(
        "skip", description="A bad input record (corrupt image, empty caption, unscoreable label, ...): "
                            "skip: set aside in OUT/<stage>/rejected.jsonl and counted; error: stop, naming it.")),
}
_DATA_DESCRIPTION = ("A stage's input instead of the previous stage's output: a path or hub id, e.g. "
                     "{train: mix.jsonl}, or a mapping, e.g. {synthesize: {path: pairs.json, images: images}}, "
                     "{train: {hub: OWNER/NAME, config: NAME}} (see adamllm.inputs).")


def _section_fields(item: Any) -> dict[str, Any]:
    return {kind.section: ((list[item], Field(default_factory=list)) if kind.many else (Optional[item], None))
            for kind in KIND_TABLE}


#: The layout of a run config as written (phase one).
RawRunConfig = create_model("RawRunConfig", __config__=ConfigDict(extra="forbid"), **_LAYOUT_FIELDS,
                            data=(dict[StageName, Any], Field(default_factory=dict, description=_DATA_DESCRIPTION)),
                            **_section_fields(Section))
#: A fully validated run config: component sections hold ``Component`` (phase two); ``data`` each
#: given input's location (an absolute path or a hub id), ``data_inputs`` the same entries whole
#: (``adamllm.inputs.DataInput``: with their image folder, dataset config, files, split).
RunConfig = create_model("RunConfig", __config__=ConfigDict(arbitrary_types_allowed=True), **_LAYOUT_FIELDS,
                         data=(dict[StageName, str], Field(default_factory=dict)),
                         data_inputs=(dict[StageName, DataInput], Field(default_factory=dict)),
                         **_section_fields(Component), source=(Optional[Path], None))


def _loc(parts: tuple) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


def _problems(error: ValidationError, prefix: tuple = ()) -> list[tuple[str, str]]:
    # pydantic marks a bad mapping key with a trailing "[key]": the key itself is the location
    return [(_loc(prefix + tuple(p for p in e["loc"] if p != "[key]")), e["msg"]) for e in error.errors()]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key written twice in one mapping (YAML keeps the last)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


#: Deepest nesting of mappings and lists a config (or an override's value) may have: real configs
#: use under ten levels; far deeper input would exhaust Python's recursion limit in the YAML
#: composer, copies and validation (a RecursionError naming nothing).
MAX_DEPTH = 64


def _too_deep(text: str) -> int | None:
    """The line (1-based) where ``text`` nests deeper than ``MAX_DEPTH``, else None. Reads parser
    events, which PyYAML produces without recursion, so any depth is measured safely."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                return event.start_mark.line + 1
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return None


def _parse_yaml(text: str, loader: type = _UniqueKeyLoader) -> Any:
    """``text`` parsed; a ``yaml.YAMLError`` for input nested deeper than ``MAX_DEPTH``."""
    line = _too_deep(text)
    if line is not None:
        raise yaml.YAMLError(f"line {line}: nested more than {MAX_DEPTH} levels deep (mappings and lists)")
    return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader


def _read_text(path: Path) -> str:
    """The file as UTF-8 text; a ``ConfigError`` naming the line and column of the first byte that is not."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError([(f"line {line}", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column}); "
                                            f"save the file as UTF-8")], str(path)) from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = _parse_yaml(_read_text(path))
    except FileNotFoundError:
        raise ConfigError([("(file)", f"no such file: {path}")], str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError([("(yaml)", str(exc))], str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError([("(top level)", "expected a mapping of sections")], str(path))
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["trainer.learning_rate=2e-5", "benchmarks.0.limit=4"]`` applied to a parsed config.

    Values are read as YAML (``2e-5`` a number, ``[a, b]`` a list, ``null``); a missing mapping on
    the way is created; a path through a value that is not a mapping or list is an error.
    """
    import copy

    data = copy.deepcopy(data)
    problems = []
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            problems.append((item[:80], "expected KEY=VALUE, e.g. trainer.learning_rate=2e-5"))
            continue
        if len(parts) > MAX_DEPTH:
            problems.append((key[:80] + "...", f"more than {MAX_DEPTH} levels deep"))
            continue
        try:
            value = _parse_yaml(text, yaml.SafeLoader) if text.strip() else ""
        except yaml.YAMLError as exc:
            problems.append((key, f"value is not valid YAML: {exc}"))
            continue
        node: Any = data
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    problems.append((key, f"{'.'.join(parts[:i]) or 'top level'} is a list of {len(node)}: "
                                          f"{part!r} is not an index of it"))
                    break
                part = int(part)
            elif not isinstance(node, dict):
                problems.append((key, f"{'.'.join(parts[:i])} is not a section (it is {node!r})"))
                break
            if last:
                node[part] = value
            else:
                if isinstance(node, dict) and part not in node:
                    node[part] = {}
                node = node[part]
    if problems:
        raise ConfigError(problems, "command line")
    return data


def validate_section(pm: PluginManager, kind: str, section: Section | dict, loc: tuple,
                     base_dir: Path | None = None) -> tuple[Component, list[tuple[str, str]]]:
    """Validate one component section with its component's options model (nested model slots
    too); returns the component and the problems found (each ``(location, message)``)."""
    if isinstance(section, dict):
        try:
            section = Section.model_validate(section)
        except ValidationError as exc:
            return Component(type=str(section.get("type"))), _problems(exc, loc)
    options = section.model_extra or {}
    try:
        spec = pm.spec(kind, section.type)
    except UnknownComponentError as exc:
        return Component(type=section.type), [(_loc(loc + ("type",)), str(exc))]
    try:
        model = spec.load_config_model()
    except Exception as exc:  # noqa: BLE001 - a plugin's broken import, reported where it is used
        provider = pm.get(kind, section.type).provider
        return Component(type=section.type), [
            (_loc(loc + ("type",)), f"{kind} {section.type!r} ({provider}): its config model failed to "
                                    f"import: {type(exc).__name__}: {exc}")
        ]
    if model is None and kind == "domain":
        model = DomainOptions
    if model is None:
        if options:
            fields = ", ".join(sorted(options))
            return Component(type=section.type), [
                (_loc(loc + (sorted(options)[0],)), f"{kind} {section.type!r} takes no options (got {fields})")
            ]
        return Component(type=section.type), []
    try:
        validated = model.model_validate(options, context={BASE_DIR: base_dir})
    except ValidationError as exc:
        return Component(type=section.type), _problems(exc, loc)
    return Component(type=section.type, options=validated), _validate_slots(pm, validated, loc, base_dir)


def _validate_slots(pm: PluginManager, options: BaseModel, loc: tuple, base_dir: Path | None) -> list:
    problems = []
    for name in type(options).model_fields:
        slot = getattr(options, name)
        if isinstance(slot, ModelSlot):
            component, errs = validate_section(pm, "backbone", Section(type=slot.type, **(slot.model_extra or {})),
                                               loc + (name,), base_dir)
            slot._options = component.options
            problems += errs
    return problems


def validate_config(
    data: dict[str, Any], pm: PluginManager, *, source: str | Path | None = None, base_dir: Path | None = None
) -> Any:
    """Validate a parsed config; relative paths resolve against ``base_dir`` (the file's folder)."""
    src = str(source) if source is not None else None
    problems: list[tuple[str, str]] = []
    try:
        raw = RawRunConfig.model_validate(data)
    except ValidationError as exc:
        # Report layout errors, then keep validating the sections that did parse.
        problems = _problems(exc)
        bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
        rest = {k: v for k, v in data.items() if k not in bad}
        rest.setdefault("output_dir", ".")
        try:
            raw = RawRunConfig.model_validate(rest)
        except ValidationError:
            raise ConfigError(problems, src) from None
    values: dict[str, Any] = {}
    for section_name, kind in SECTIONS.items():
        value = getattr(raw, section_name)
        if isinstance(value, list):
            items = []
            for i, section in enumerate(value):
                component, errs = validate_section(pm, kind, section, (section_name, i), base_dir)
                items.append(component)
                problems += errs
            values[section_name] = items
        elif value is not None:
            values[section_name], errs = validate_section(pm, kind, value, (section_name,), base_dir)
            problems += errs
    inputs, data_problems = validate_data(raw.data, base_dir)
    problems += data_problems + _layout_problems(data, raw, base_dir)
    if problems:
        raise ConfigError(problems, src)
    return RunConfig(
        output_dir=Path(resolve_local(raw.output_dir, base_dir)),
        seed=raw.seed,
        stages=list(raw.stages),
        on_bad_record=raw.on_bad_record,
        data={stage: given.location for stage, given in inputs.items()},
        data_inputs=inputs,
        source=Path(source).resolve() if source is not None else None,
        **values,
    )


def _layout_problems(data: dict[str, Any], raw: Any, base_dir: Path | None) -> list[tuple[str, str]]:
    """What a well-typed layout may still not say: no stage to run; an empty ``output_dir`` (which
    would mean the config's own folder); an output folder that is a root or home (or holds it)."""
    from .locking import output_problem

    problems = []
    if "stages" in data and not raw.stages:
        problems.append(("stages", "names no stage; leave it out to run every stage, or name the ones to run"))
    given = data.get("output_dir")
    if isinstance(given, str) and not given.strip():
        problems.append(("output_dir", "is empty; name the folder the run writes into"))
    elif "output_dir" in data:
        reason = output_problem(resolve_local(raw.output_dir, base_dir))
        if reason:
            problems.append(("output_dir", f"{resolve_local(raw.output_dir, base_dir)} is {reason}; "
                                           f"give a folder of its own for the run"))
    return problems


def load_config(path: str | Path, pm: PluginManager, overrides: list[str] | None = None) -> Any:
    """Read and validate a YAML run config, with ``key=value`` overrides applied first."""
    path = Path(path)
    data = load_yaml(path)
    if overrides:
        data = apply_overrides(data, overrides)
    return validate_config(data, pm, source=path, base_dir=path.resolve().parent)


def json_schema(pm: PluginManager) -> dict[str, Any]:
    """The JSON Schema of a run config, built from the installed components."""
    fields: dict[str, Any] = {}
    for kind in KIND_TABLE:
        variants = []
        for name, registered in sorted(pm.components(kind.name).items()):
            base = registered.spec.load_config_model() or (DomainOptions if kind.name == "domain" else BaseModel)
            variant = create_model(
                f"{kind.name}_{name}".replace("-", "_").replace(".", "_"),
                __base__=base,
                __config__=None if base is not BaseModel else ConfigDict(extra="forbid"),
                type=(Literal[name], Field(description=registered.spec.description or name)),
            )
            variants.append(variant)
        item: Any = Section
        if len(variants) == 1:
            item = variants[0]
        elif variants:
            item = Annotated[Union[tuple(variants)], Field(discriminator="type")]
        fields[kind.section] = (list[item], Field(default_factory=list)) if kind.many else (Optional[item], None)
    data_section = create_model("DataSection", __config__=ConfigDict(extra="forbid"), **{
        stage: (Union[str, stage_model(stage)], None) for stage in STAGES})
    model = create_model("AdamllmRunConfig", __config__=ConfigDict(extra="forbid"), **_LAYOUT_FIELDS,
                         data=(data_section, Field(default_factory=dict, description=_DATA_DESCRIPTION)), **fields)
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
