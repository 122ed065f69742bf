"""Domain image-caption pairs, the input of ``synthesize`` (and of ``compose``'s caption turns).

The canonical layout is the released ``image_caption_pairs`` files' ShareGPT style::

    {"images": ["relative/path.jpg"],
     "messages": [{"role": "user", "content": "<image>{caption instruction}"},
                  {"role": "assistant", "content": "{caption}"}]}

as a JSON array (pretty-printed, as released) or JSONL; the ``{"image": ..., "conversations":
[{"from": "human"|"gpt", "value": ...}]}`` spelling (PubMedVision) reads the same. Formats a domain
reads itself (Recipe1M records, say) come from its ``SourceSpec.reader``. Whatever the reader,
the stages get ``ImageCaptionPair`` records whose ``image`` is an absolute path and whose ``id``
is stable: the record's own ``id``, else a hash of its image path (as written) and caption (never
the row number, so reordering a file does not rename its pairs).

Where images are (``PairImages``): with an image root (``data.synthesize.images`` or the domain
section's ``images``), every image path resolves under it and must stay inside it. Without one, a
path resolves beside the pairs file; one not found there is looked up in the file's sibling
``images/`` folder, the released layout (the file holds bare names, its images ship as
``images/*.zip`` unzipped into ``images/``). That fallback is said once (``PairStats.note``) and
counted (``PairStats.in_images_folder``); paths stay confined to the file's folder.

Records with other than one image are skipped by design (the released pairs are single-image)
and counted. A bad record (malformed, missing fields, a path that leaves its root, a missing
image file, an empty or huge caption) goes to the stage's quarantine (``adamllm.quarantine``):
set aside in ``rejected.jsonl`` and counted, or, under ``on_bad_record: error``, an error naming
the file and line.
"""
from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .backbone import IMAGE_PLACEHOLDER
from .io import DataError, PathEscapeError, SymlinkLoopError, iter_records, resolve_under
from .quarantine import Quarantine
from .records import ImageCaptionPair

#: Formats core reads without a plugin reader.
CORE_FORMATS = ("sharegpt", "pubmedvision")
#: Longer captions are bad records: no caption is this long (Recipe1M recipes are a few thousand
#: characters), a longer one is a concatenation or a dump, and it would only be dropped as too long
#: for every backbone later.
MAX_CAPTION_CHARS = 20_000
#: The folder beside a released pairs file that holds its images.
IMAGES_FOLDER = "images"


class BadPair(DataError):
    """One record that cannot be a pair; ``kind`` is what the stats count it as."""

    def __init__(self, message: str, kind: str = "bad_record") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class PairStats:
    """What reading pairs found: pairs read, records skipped by design (not one image) by reason,
    images found in the sibling ``images/`` folder, and the quarantine that bad records go to
    (default: none, so a bad record is an error). ``note``: where one-line notices go (the stage's
    echo), each said once."""

    read: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    quarantine: Quarantine = field(default_factory=lambda: Quarantine(None, "error"))
    in_images_folder: int = 0
    note: Callable[[str], None] | None = None
    _noted: set = field(default_factory=set, repr=False)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def bad(self, where: str, message: str, kind: str = "bad_record") -> None:
        self.quarantine.reject(where, message, kind=kind)

    def notice(self, message: str) -> None:
        if message not in self._noted:
            self._noted.add(message)
            if self.note is not None:
                self.note(message)


def pair_id(image: str, caption: str) -> str:
    return hashlib.sha1(f"{image}\n{caption}".encode("utf-8")).hexdigest()[:16]


def single_image(record: dict, where: str) -> str | None:
    """The record's one image path (``images`` or ``image``); None when it has not exactly one."""
    images = record.get("images", record.get("image"))
    images = [images] if isinstance(images, str) else list(images or [])
    if len(images) != 1:
        return None
    if not isinstance(images[0], str):
        raise BadPair(f"an image must be a path, got {type(images[0]).__name__}")
    return images[0]


def confined(root: Path, image: str, where: str = "") -> str:
    """The image's absolute path inside ``root`` (absolute paths and symlinks included), which must exist."""
    try:
        path = resolve_under(root, image)
    except PathEscapeError as exc:
        raise BadPair(str(exc), "path_escape") from None
    except SymlinkLoopError as exc:
        raise BadPair(str(exc), "symlink_loop") from None
    if not path.is_file():
        _not_regular(image, path)
        raise BadPair(f"image {image!r} not found under {root}", "missing_image")
    return str(path)


def _not_regular(image: str, path: Path) -> None:
    """A path that exists but is no regular file (a FIFO, a device, a folder) is a bad image, not a missing one."""
    if path.exists():
        raise BadPair(f"image {image!r} ({path}) is not a regular file", "bad_image")


class PairImages:
    """Where one pairs file's image paths resolve (module docstring): under ``root`` when given,
    else beside the file and then in its sibling ``images/`` folder."""

    def __init__(self, source: Path, root: str | Path | None = None, stats: PairStats | None = None) -> None:
        self.source = Path(source)
        self.root = Path(root) if root is not None else None
        self.stats = stats if stats is not None else PairStats()

    def __call__(self, image: str) -> str:
        if self.root is not None:
            return confined(self.root, image)
        folder = self.source.parent
        try:
            beside = resolve_under(folder, image)
        except PathEscapeError as exc:
            raise BadPair(str(exc), "path_escape") from None
        except SymlinkLoopError as exc:
            raise BadPair(str(exc), "symlink_loop") from None
        if beside.is_file():
            return str(beside)
        _not_regular(image, beside)
        sibling = folder / IMAGES_FOLDER
        try:
            inside = resolve_under(sibling, image) if sibling.is_dir() else None
        except (PathEscapeError, SymlinkLoopError):
            inside = None
        if inside is None or not inside.is_file():
            where = f"{folder} (nor in its {IMAGES_FOLDER}/ folder)" if sibling.is_dir() else str(folder)
            raise BadPair(f"image {image!r} not found under {where}", "missing_image")
        self.stats.in_images_folder += 1
        self.stats.notice(f"image paths of {self.source.name} are not beside it: reading them from its sibling "
                          f"{IMAGES_FOLDER}/ folder ({sibling}), the released layout; set the image folder with "
                          f"data.synthesize.images or the domain's images option")
        return str(inside)


def conversation_caption(record: dict, where: str) -> tuple[str, str] | None:
    """``(caption instruction, caption)`` from the first user and assistant turns; None without a caption."""
    turns = record.get("messages") or record.get("conversations")
    if not isinstance(turns, list) or len(turns) < 2:
        raise BadPair("expected 'messages' (or 'conversations') with a user and an assistant turn", "missing_field")
    texts = []
    for turn in turns[:2]:
        if not isinstance(turn, dict):
            raise BadPair("a turn must be an object")
        text = turn.get("content", turn.get("value", ""))
        if not isinstance(text, str):
            raise BadPair(f"a turn's content must be a string, got {type(text).__name__}")
        texts.append(text)
    instruction = texts[0].replace(IMAGE_PLACEHOLDER, "").strip()
    caption = texts[1].strip()
    return (instruction, caption) if caption else None


def read_single_image_pairs(path: str | Path, caption_of: Callable[[dict, str], tuple[str, str] | None],
                            stats: PairStats | None = None, image_root: str | Path | None = None,
                            ) -> Iterator[tuple[str, ImageCaptionPair]]:
    """``(where, pair)`` for each single-image record of a JSON array or JSONL file, its
    ``(caption instruction, caption)`` read by ``caption_of(record, where)`` (None: no caption),
    its image resolved by ``PairImages`` (under ``image_root`` when given). Readers of other
    layouts call this with their own ``caption_of``."""
    path = Path(path)
    stats = stats if stats is not None else PairStats()
    locate_image = PairImages(path, image_root, stats)
    for where, record in iter_records(path, on_error=stats.bad):
        try:
            image = single_image(record, where)
            if image is None:
                stats.skip("not_one_image")
                continue
            absolute = locate_image(image)
            parsed = caption_of(record, where)
            if parsed is None:
                raise BadPair("empty caption", "empty_caption")
            instruction, caption = parsed
            if len(caption) > MAX_CAPTION_CHARS:
                raise BadPair(f"caption of {len(caption)} characters (limit {MAX_CAPTION_CHARS})", "caption_too_long")
            record_id = record.get("id")
            if record_id is not None and not isinstance(record_id, (str, int)):
                raise BadPair(f"id must be a string or a number, got {type(record_id).__name__}")
        except BadPair as exc:
            stats.bad(where, str(exc), exc.kind)
            continue
        stats.read += 1
        yield where, ImageCaptionPair(id=str(record_id if record_id not in (None, "") else pair_id(image, caption)),
                                      image=absolute, caption=caption, instruction=instruction)


def read_conversation_pairs(path: str | Path, stats: PairStats | None = None, image_root: str | Path | None = None,
                            ) -> Iterator[tuple[str, ImageCaptionPair]]:
    """``(where, pair)`` for each single-image record of a ShareGPT-style pairs file."""
    return read_single_image_pairs(path, conversation_caption, stats, image_root)


def reader_for(format: str, reader: str | Callable[..., Any] | None = None) -> Callable[..., Iterable]:
    """The reader of a source: the plugin's own ``reader``, else core's for the core formats."""
    if reader is not None:
        from .specs import resolve

        return resolve(reader)
    if format in CORE_FORMATS:
        return read_conversation_pairs
    raise DataError(f"no reader for image-caption format {format!r}: core reads {', '.join(CORE_FORMATS)}; "
                    f"a domain with another format names its reader in SourceSpec(reader=...)")


def locate(location: str, base_dir: Path | None = None) -> Path:
    """A local file for a source location: a path, ``package:relative/path`` or ``hf://datasets/...``."""
    if location.startswith("hf://datasets/"):
        parts = location.removeprefix("hf://datasets/").split("/", 2)
        if len(parts) != 3:
            raise DataError(f"{location}: expected hf://datasets/OWNER/NAME/FILE")
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(f"{parts[0]}/{parts[1]}", parts[2], repo_type="dataset"))
        except Exception as exc:  # noqa: BLE001 - offline, unknown repo, missing file
            raise DataError(f"cannot download {location}: {type(exc).__name__}: {exc}; download it yourself and "
                            f"set data.synthesize to the local file") from None
    package, sep, relative = location.partition(":")
    if sep and package.replace(".", "").replace("_", "").isalnum() and not Path(location).exists():
        from importlib.resources import files

        try:
            return Path(str(files(package).joinpath(relative)))
        except ModuleNotFoundError:
            raise DataError(f"{location}: no installed package {package!r}") from None
    path = Path(location).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def _takes_image_root(read: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(read).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "image_root" or p.kind is p.VAR_KEYWORD for p in parameters)


def _encodable(*texts: str | None) -> bool:
    """Every text can be written as UTF-8 (core's reader rejects lone surrogates itself: ``adamllm.io``)."""
    try:
        for text in texts:
            if text is not None and not text.isascii():
                text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_pairs(path: Path, format: str = "sharegpt", reader: str | Callable[..., Any] | None = None,
               *, image_root: str | Path | None = None, limit: int | None = None,
               stats: PairStats | None = None) -> Iterator[tuple[str, ImageCaptionPair]]:
    """``(where, pair)`` of a local source file, validated as ``ImageCaptionPair`` records; image
    paths resolve under ``image_root`` when given (see ``PairImages``)."""
    if not path.is_file():
        raise DataError(f"image-caption pairs file {path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file: no image-caption pairs in it")
    read = reader_for(format, reader)
    if image_root is None:
        records = read(path, stats=stats)
    elif _takes_image_root(read):
        records = read(path, stats=stats, image_root=image_root)
    else:
        raise DataError(f"the {format!r} pairs reader {getattr(read, '__qualname__', read)} takes no image_root, "
                        f"so the image folder {image_root} cannot be used with it; leave the images option unset")
    for count, (where, pair) in enumerate(records, start=1):
        if not isinstance(pair, ImageCaptionPair):
            try:
                pair = ImageCaptionPair.model_validate(pair)
            except Exception as exc:  # pydantic.ValidationError
                raise DataError(f"{where}: the {format} reader gave an invalid pair: {exc}") from None
        pair.where = pair.where or where
        if not _encodable(pair.caption, pair.instruction, pair.image, pair.id):  # a plugin reader's text
            problem = f"{where}: text is not valid Unicode (an unpaired surrogate)"
            if stats is None:
                raise DataError(problem)
            stats.bad(where, problem.removeprefix(f"{where}: "))
            continue
        yield where, pair
        if limit is not None and count >= limit:
            return  # before the reader reads (and counts) one more
