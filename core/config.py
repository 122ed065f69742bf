"""Run configs: a YAML file validated in two phases.

Phase one reads the layout (output directory, seed, stages, and for every component section its
``type``); phase two validates each section's remaining fields with the selected component's own
pydantic model. Errors name the section and the field. ``json_schema`` builds the same structure as
a discriminated union over the installed components, for editors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .registry import PluginManager, UnknownComponentError

STAGES = ("synthesize", "filter", "compose", "train", "evaluate")

#: Config section -> component kind. ``benchmarks`` is a list of sections.
SECTIONS = {
    "domain": "domain",
    "synthesizer": "synthesizer",
    "filter": "filter",
    "backbone": "backbone",
    "trainer": "trainer",
    "benchmarks": "benchmark",
}


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


class RawRunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output_dir: Path = Field(description="Where every stage writes its files.")
    seed: int = Field(0, description="Seed for every random choice of the run.")
    stages: list[Literal["synthesize", "filter", "compose", "train", "evaluate"]] = Field(
        default_factory=lambda: list(STAGES), description="Stages to run, in pipeline order."
    )
    domain: Optional[Section] = None
    synthesizer: Optional[Section] = None
    filter: Optional[Section] = None
    backbone: Optional[Section] = None
    trainer: Optional[Section] = None
    benchmarks: list[Section] = Field(default_factory=list)
    data: dict[str, str] = Field(
        default_factory=dict,
        description="Inputs that replace a stage's default input file, e.g. {train: mix.jsonl}.",
    )


class Component(BaseModel):
    """A validated component selection: its name and its options (the component's own model)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    type: str
    options: Any = None


class RunConfig(BaseModel):
    """A fully validated run config."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    output_dir: Path
    seed: int = 0
    stages: list[str]
    domain: Optional[Component] = None
    synthesizer: Optional[Component] = None
    filter: Optional[Component] = None
    backbone: Optional[Component] = None
    trainer: Optional[Component] = None
    benchmarks: list[Component] = Field(default_factory=list)
    data: dict[str, str] = Field(default_factory=dict)
    source: Optional[Path] = None


def _loc(parts: tuple) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


def _problems(error: ValidationError, prefix: tuple = ()) -> list[tuple[str, str]]:
    return [(_loc(prefix + tuple(e["loc"])), e["msg"]) for e in error.errors()]


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([("(file)", f"no such file: {path}")], str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError([("(yaml)", str(exc))], str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError([("(top level)", "expected a mapping of sections")], str(path))
    return data


def _validate_section(pm: PluginManager, kind: str, section: Section, loc: tuple) -> tuple[Component, list]:
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
    if model is None:
        if options:
            fields = ", ".join(sorted(options))
            return Component(type=section.type), [
                (_loc(loc + (sorted(options)[0],)), f"{kind} {section.type!r} takes no options (got {fields})")
            ]
        return Component(type=section.type), []
    try:
        return Component(type=section.type, options=model.model_validate(options)), []
    except ValidationError as exc:
        return Component(type=section.type), _problems(exc, loc)


def validate_config(
    data: dict[str, Any], pm: PluginManager, *, source: str | Path | None = None, base_dir: Path | None = None
) -> RunConfig:
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
        if section_name == "benchmarks":
            items = []
            for i, section in enumerate(value):
                component, errs = _validate_section(pm, kind, section, (section_name, i))
                items.append(component)
                problems += errs
            values[section_name] = items
        elif value is not None:
            values[section_name], errs = _validate_section(pm, kind, value, (section_name,))
            problems += errs
    if problems:
        raise ConfigError(problems, src)
    output_dir = raw.output_dir
    if base_dir is not None and not output_dir.is_absolute():
        output_dir = (base_dir / output_dir).resolve()
    # a relative path that exists next to the config is taken from there; anything else stays
    # as written (an absolute path, a path relative to the working directory, or a hub dataset id)
    data_paths = {
        k: str(base_dir / v) if base_dir is not None and (base_dir / v).exists() else v
        for k, v in raw.data.items()
    }
    return RunConfig(
        output_dir=output_dir,
        seed=raw.seed,
        stages=list(raw.stages),
        data=data_paths,
        source=Path(source) if source is not None else None,
        **values,
    )


def load_config(path: str | Path, pm: PluginManager) -> RunConfig:
    """Read and validate a YAML run config."""
    path = Path(path)
    return validate_config(load_yaml(path), pm, source=path, base_dir=path.resolve().parent)


def json_schema(pm: PluginManager) -> dict[str, Any]:
    """The JSON Schema of a run config, built from the installed components."""
    fields: dict[str, Any] = {}
    for section_name, kind in SECTIONS.items():
        variants = []
        for name, registered in sorted(pm.components(kind).items()):
            base = registered.spec.load_config_model() or BaseModel
            variant = create_model(
                f"{kind}_{name}".replace("-", "_").replace(".", "_"),
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
        if section_name == "benchmarks":
            fields[section_name] = (list[item], Field(default_factory=list))
        else:
            fields[section_name] = (Optional[item], None)
    base_fields = {
        name: (f.annotation, f)
        for name, f in RawRunConfig.model_fields.items()
        if name not in SECTIONS
    }
    model = create_model(
        "AdamllmRunConfig", __config__=ConfigDict(extra="forbid"), **base_fields, **fields
    )
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
