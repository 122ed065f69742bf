"""Training records: ShareGPT-style conversations with image paths, from a file, a local dataset
folder or a hub dataset.

Works for our composed mix and for the released mixes (``AdaptLLM/biomed-visual-instructions``,
``AdaptLLM/food-visual-instructions``): ``{"messages": [...], "images": ["path"]}``, one per line
(JSONL) or in a JSON array (``.json``). A hub dataset, or a local folder laid out as one (files,
and a README.md whose YAML front matter declares ``configs:``), is loaded with
``datasets.load_dataset(source, name=config, data_files=..., split=...)``: the released repos hold
three differently shaped configs (``image_caption_and_synthetic_task``, the training mix;
``image_caption_pairs``; ``synthetic_visual_tasks``), so a config is named
(``data.train: {hub: ID, config: NAME}``); a bad or missing name is a one-line error listing the
dataset's configs.

Images: the records' relative paths resolve under ``image_root`` when given, else beside the file
(or in the dataset folder); a relative path not found there but found in the sibling ``images/``
folder (the released layout: images shipped as ``images/*.zip``, unzipped there) is read from it,
said once through ``note`` and counted. A hub dataset's records naming image files need
``image_root``.

A structurally bad record is an error naming the file and line; a record that cannot be encoded
(too long, placeholders and images disagree, unreadable image) is dropped and counted by the adapter.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from adamllm.io import DataError, iter_records
from adamllm.quarantine import Quarantine
from adamllm.records import TrainingExample

def _check(record: Any, where: str) -> dict:
    """The record validated as an ``adamllm.records.TrainingExample`` (a missing or null
    ``images`` is none) with at least one non-empty assistant reply, back as the plain dict the
    trainer reads. Raises ``DataError`` naming ``where``."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected an object with 'messages' and 'images'")
    try:
        example = TrainingExample.model_validate({**record, "images": record.get("images") or []})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise DataError(f"{where}: {problems}") from None
    replies = [m.content for m in example.messages if m.role == "assistant"]
    if not replies:
        raise DataError(f"{where}: no assistant turn: nothing to train on")
    if not all(reply.strip() for reply in replies):
        raise DataError(f"{where}: an empty assistant reply (an empty caption?)")
    return example.model_dump(mode="json", exclude_none=True)


def _accept(records: list[dict], seen: set[str], record: Any, where: str, default_id: str, quarantine) -> None:
    try:
        checked = _check(record, where)
    except DataError as exc:
        quarantine.reject(where, str(exc).removeprefix(f"{where}: "),
                          record_id=str(record.get("id")) if isinstance(record, dict) and "id" in record else None)
        return
    checked.setdefault("id", default_id)
    if checked["id"] in seen:
        quarantine.reject(where, f"id {checked['id']!r} appears more than once; the first is kept",
                          kind="duplicate_id", record_id=str(checked["id"]))
        return
    seen.add(checked["id"])
    checked["_where"] = where
    records.append(checked)


IMAGES_FOLDER = "images"


def load_records(source: str | Path, *, limit: int | None = None, split: str | None = None,
                 quarantine=None, image_root: str | Path | None = None, config: str | None = None,
                 data_files: str | list[str] | None = None,
                 note: Callable[[str], None] | None = None) -> tuple[list[dict], Path | None]:
    """Records and the folder their image paths are confined to (``image_root``, else the file's
    folder or the dataset folder; for a hub dataset ``image_root``, which records with image paths
    need). ``config``, ``data_files``, ``split`` (default ``train``): the part of a dataset folder
    or hub dataset to load. ``note``: where the one-line notice of the ``images/`` fallback goes.

    A bad record (malformed, no assistant reply, an empty one, a repeated id) goes to
    ``quarantine`` (``adamllm.quarantine.Quarantine``) or, without one, is a ``DataError``. Each
    kept record has ``_where`` (file and line, or dataset and row), for the records the backbone
    later drops.
    """
    path = Path(source).expanduser()
    records: list[dict] = []
    seen: set[str] = set()
    quarantine = quarantine if quarantine is not None else Quarantine(None, "error")
    reject = quarantine.reject
    if path.is_file():  # JSONL, or a JSON array (.json); a record without id gets its line or position
        refuse_dataset_options(path, config, data_files, split)
        array = path.suffix.lower() == ".json"
        rows = iter_records(path, on_error=reject)
        root = Path(image_root) if image_root else path.parent
    else:
        # a hub dataset: images still need image_root
        rows = _dataset_rows(dataset_source(path, source), config, data_files, split,
                             require_image_root=not path.exists() and image_root is None)
        array = True  # a record without id gets its row
        root = Path(image_root) if image_root else (path if path.is_dir() else None)
    images = _SiblingImages(root, note) if root is not None and image_root is None else None
    for index, (where, record) in enumerate(rows):
        if images is not None and isinstance(record, dict):
            record = images.resolve(record)
        _accept(records, seen, record, where, str(index) if array else where.rpartition(":")[2], quarantine)
        if limit and len(records) >= limit:
            break
    return records, root


def training_input(ctx, image_root: str | None) -> tuple[str | Path | None, dict[str, Any]]:
    """The train stage's image folder and dataset options: ``data.train.images`` or the trainer's
    ``image_root`` (both given and different: an error), else None: the data file's folder (the
    composed mix names its images relative to its own folder, ``images/...``, see
    ``adamllm.mix_writers``, so a copied run folder trains on its own copy); and ``data.train``'s
    ``config``, ``data_files``, ``split``."""
    given = ctx.data_input("train")
    if given is not None and given.images:
        if image_root is not None and Path(image_root) != Path(given.images):
            raise DataError(f"data.train.images ({given.images}) and trainer.image_root ({image_root}) name "
                            f"different image folders; keep one")
        image_root = given.images
    dataset = {k: getattr(given, k, None) for k in ("config", "data_files", "split")}
    return image_root, dataset


def refuse_dataset_options(path: Path, config: str | None, data_files: Any, split: str | None) -> None:
    """``config``, ``data_files`` and ``split`` pick part of a dataset: given with a file, an error."""
    picked = [name for name, value in (("config", config), ("data_files", data_files), ("split", split))
              if value is not None]
    if picked:
        raise DataError(f"{path}: {', '.join(picked)} pick part of a dataset (a hub dataset or a dataset "
                        f"folder), and this is a file")


def dataset_source(path: Path, source: str | Path) -> str:
    """What ``datasets.load_dataset`` is given: the local folder, else the hub id as written."""
    return str(path if path.exists() else source)


def open_dataset(source: str, config: str | None, data_files: Any, split: str | None):
    """``datasets.load_dataset`` (memory-mapped Arrow); a failure is one ``DataError`` line (``_load_error``)."""
    from datasets import load_dataset

    split = split or "train"
    try:
        return load_dataset(source, name=config, data_files=data_files, split=split)
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, bad config, no such split...
        raise DataError(_load_error(source, config, split, exc)) from None


def check_image_root(where: str, source: str, record: dict) -> None:
    """A hub dataset's record naming image files needs the folder that holds them."""
    if any(isinstance(i, str) for i in record.get("images") or []):
        raise DataError(f"{where}: the records name image files; set the folder that holds them "
                        f"(data.train: {{hub: {source}, images: DIR}}, or the trainer's image_root)")


def _dataset_rows(source: str, config: str | None, data_files: Any, split: str | None,
                  require_image_root: bool = False):
    """``(where, record)`` of a dataset folder or hub dataset, through ``datasets.load_dataset``."""
    for index, record in enumerate(open_dataset(source, config, data_files, split)):
        record = dict(record)
        if require_image_root:
            check_image_root(f"{source}[{index}]", source, record)
        yield f"{source}[{index}]", record


def _load_error(source: str, config: str | None, split: str, exc: Exception) -> str:
    """One line: the dataset's configs when the config is missing or unknown, else the first line of the error."""
    try:
        from datasets import get_dataset_config_names

        names = list(get_dataset_config_names(source))
    except Exception:  # noqa: BLE001 - offline hub, not a dataset at all
        names = []
    named = [n for n in names if n != "default"]
    if config is not None and named and config not in names:
        return f"dataset {source!r} has no config {config!r}; its configs: {', '.join(named)}"
    if config is None and len(named) > 1:
        return (f"dataset {source!r} has {len(named)} configs: {', '.join(named)}; name one "
                f"(data.train: {{hub: {source}, config: NAME}}, or path: for a local folder)")
    first = str(exc).splitlines()[0] if str(exc) else ""
    return (f"cannot load dataset {source!r} (config {config!r}, split {split!r}): {type(exc).__name__}: {first}; "
            f"for local data give a JSONL or JSON file, or a folder laid out as the hub dataset")


class _SiblingImages:
    """A record's relative image paths not found under ``root`` but found in ``root/images/`` become
    ``images/<path>`` (still under ``root``, so still confined to it); counted and said once."""

    def __init__(self, root: Path, note: Callable[[str], None] | None) -> None:
        self.root, self.note, self.count = Path(root), note, 0

    def resolve(self, record: dict) -> dict:
        paths = record.get("images")
        if not isinstance(paths, list) or not any(isinstance(p, str) for p in paths):
            return record
        changed = [self._one(p) if isinstance(p, str) else p for p in paths]
        return {**record, "images": changed} if changed != paths else record

    def _one(self, image: str) -> str:
        if Path(image).is_absolute() or (self.root / image).exists():
            return image
        moved = f"{IMAGES_FOLDER}/{image}"
        if not (self.root / moved).is_file():
            return image  # missing: the adapter drops and counts the record, naming the path
        self.count += 1
        if self.count == 1 and self.note is not None:
            self.note(f"image paths of {self.root} are not beside it: reading them from its sibling "
                      f"{IMAGES_FOLDER}/ folder ({self.root / IMAGES_FOLDER}), the released layout; set "
                      f"data.train.images (or the trainer's image_root) to use another folder")
        return moved
