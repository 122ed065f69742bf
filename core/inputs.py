"""A stage's given input: the run config's ``data:`` section, in its two forms.

``data.<stage>`` replaces a stage's input (by default the previous stage's output). Written as a
string, it is a local file or folder (relative to the config file) or a hub dataset id
(``OWNER/NAME``); written as a mapping, it also says where the records' images are and which part
of a dataset to load::

    data:
      synthesize: {path: pairs/image_caption_pairs.json, images: /data/pmc/images}
      tune: {path: seeds, images: /data/allava_vflan/images/images_191task_1k}
      train: {hub: AdaptLLM/biomed-visual-instructions, config: image_caption_and_synthetic_task}
      # or a local copy laid out as the hub repository (README.md declaring its configs):
      # train: {path: biomed-visual-instructions, config: image_caption_and_synthetic_task}

Fields: ``path`` or ``hub`` (exactly one), then, where the stage takes them (``STAGE_OPTIONS``):
``images`` (the folder the records' image paths resolve under and are confined to), ``config``,
``data_files`` and ``split`` (passed to ``datasets.load_dataset`` for a hub dataset or a local
datasets folder). ``validate_data`` checks an entry when a config is validated: an unknown key,
both ``path`` and ``hub``, a missing file or folder are errors naming ``data.<stage>.<field>``.

The validated config keeps each entry's location (an absolute path or a hub id) in
``config.data`` and the whole entry, a ``DataInput``, in ``config.data_inputs``. Stage
fingerprints record an entry as ``data.<stage>`` (its location) when it has no options, else as
``data.<stage>.<field>`` for every field given (``DataInput.fingerprint``): a changed image root,
config name or file list reruns the stage.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .paths import existing_or_hub_id, looks_like_hub_id, resolve_local

#: Options a stage's ``data`` entry takes besides ``path`` (a stage not listed takes only ``path``).
STAGE_OPTIONS: dict[str, tuple[str, ...]] = {
    "tune": ("images",),
    "synthesize": ("images",),
    "train": ("hub", "images", "config", "data_files", "split"),
    "evaluate": ("hub",),
}
#: Stages that read the domain's image-caption pairs (``data.synthesize`` or the domain's source).
PAIR_STAGES = ("synthesize", "compose")
#: Options that pick part of a dataset (``datasets.load_dataset``): a hub id or a local dataset folder.
DATASET_OPTIONS = ("config", "data_files", "split")


class DataInput(BaseModel):
    """One ``data.<stage>`` entry, validated (paths absolute when it came from a config file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: Optional[str] = Field(None, description="A local file or folder (relative to the config file).")
    hub: Optional[str] = Field(None, description="A hub id, OWNER/NAME: a dataset (for data.evaluate, a model).")
    images: Optional[str] = Field(
        None, description="The folder the records' relative image paths resolve under and are confined to "
                          "(relative to the config file).")
    config: Optional[str] = Field(
        None, description="The dataset config to load (a hub dataset, or a local folder whose README.md "
                          "declares configs), e.g. image_caption_and_synthetic_task.")
    data_files: Optional[Union[str, list[str]]] = Field(
        None, description="The dataset's file(s) to load, as paths inside the dataset (hub repo or folder).")
    split: Optional[str] = Field(None, description="The split to load (default: train).")

    @property
    def location(self) -> str:
        """The local path or the hub id."""
        return self.path if self.path is not None else str(self.hub)

    @property
    def options(self) -> dict[str, Any]:
        """The fields given besides the location."""
        return {k: v for k, v in self.model_dump(exclude_none=True).items() if k not in ("path", "hub")}

    def fingerprint(self, stage: str) -> dict[str, Any]:
        """Its entries in a stage fingerprint: ``data.<stage>`` alone (as the string form always
        was), or ``data.<stage>.<field>`` per field given when it has options."""
        if not self.options:
            return {f"data.{stage}": self.location}
        return {f"data.{stage}.{k}": _plain(v) for k, v in self.model_dump(exclude_none=True).items()}


def _plain(value: Any) -> Any:
    return ",".join(value) if isinstance(value, list) else value


def allowed_fields(stage: str) -> tuple[str, ...]:
    return ("path", *STAGE_OPTIONS.get(stage, ()))


def stage_model(stage: str) -> type[BaseModel]:
    """The mapping form of ``data.<stage>`` as a model with only the fields that stage takes (the
    JSON Schema's)."""
    fields = {name: (info.annotation, info) for name, info in DataInput.model_fields.items()
              if name in allowed_fields(stage)}
    return create_model(f"data_{stage}", __config__=ConfigDict(extra="forbid"), **fields)


def from_string(value: str) -> DataInput:
    """The string form (already resolved): an existing path, else a hub id, else a (missing) path."""
    if not Path(value).expanduser().exists() and looks_like_hub_id(value):
        return DataInput(hub=value)
    return DataInput(path=value)


def validate_data(raw: dict[str, Any], base: Path | None) -> tuple[dict[str, DataInput], list[tuple[str, str]]]:
    """Every ``data`` entry as a ``DataInput`` and the problems found, each ``(location, message)``.
    Relative paths resolve against ``base`` (the config file's folder); without it (a config built
    in code) paths stay as given and are not checked."""
    inputs: dict[str, DataInput] = {}
    problems: list[tuple[str, str]] = []
    for stage, value in raw.items():
        found = _entry(stage, value, base)
        if isinstance(found, DataInput):
            inputs[stage] = found
        else:
            problems += found
    return inputs, problems


def _entry(stage: str, value: Any, base: Path | None) -> DataInput | list[tuple[str, str]]:
    where = f"data.{stage}"
    if isinstance(value, str):
        try:
            return from_string(existing_or_hub_id(value, base))
        except ValueError as exc:
            return [(where, str(exc))]
    if not isinstance(value, dict):
        return [(where, f"expected a path, a hub id or a mapping of {', '.join(allowed_fields(stage))}; "
                        f"got {type(value).__name__}")]
    allowed = allowed_fields(stage)
    unknown = [key for key in value if key not in allowed]
    if unknown:
        return [(f"{where}.{key}", f"unknown key; {where} takes {', '.join(allowed)}") for key in unknown]
    try:
        given = DataInput.model_validate(value)
    except ValidationError as exc:
        return [(".".join([where, *(str(p) for p in e["loc"])]), e["msg"]) for e in exc.errors()]
    problems = []
    for name, text in given.model_dump(exclude_none=True).items():
        if text == "" or text == []:
            problems.append((f"{where}.{name}", "is empty"))
    if problems:
        return problems
    if given.path is None and given.hub is None:
        return [(f"{where}.path", "missing: give path (a local file or folder)"
                 + (" or hub (a hub id)" if "hub" in allowed else ""))]
    if given.path is not None and given.hub is not None:
        return [(f"{where}.hub", "give either path or hub, not both")]
    update: dict[str, Any] = {}
    if given.hub is not None and not looks_like_hub_id(given.hub):
        problems.append((f"{where}.hub", f"expected a hub id OWNER/NAME, got {given.hub!r}"))
    if given.path is not None:
        update["path"] = resolve_local(given.path, base)
        if base is not None and not Path(update["path"]).exists():
            problems.append((f"{where}.path", f"no such file or folder: {update['path']} "
                                              f"(paths are relative to the config file)"))
        elif base is not None and Path(update["path"]).is_file():
            problems += [(f"{where}.{name}", f"picks part of a dataset (a hub dataset or a local dataset folder); "
                                             f"{where}.path is a file")
                         for name in DATASET_OPTIONS if getattr(given, name) is not None]
    if given.images is not None:
        update["images"] = resolve_local(given.images, base)
        if base is not None and not Path(update["images"]).is_dir():
            problems.append((f"{where}.images", f"no such folder: {update['images']} "
                                                f"(paths are relative to the config file)"))
    return problems or given.model_copy(update=update)
