"""Stage fingerprints: what a stage's result depends on, so a rerun never reuses stale work.

A fingerprint holds the stage's config sections flattened to dotted keys
(``trainer.learning_rate``), the run's seed, its ``data.<stage>`` input with its options (image
folder, dataset config, files; compose also records ``data.synthesize``, the pairs it reads
again), the identity of every input file or folder it reads (size and content hash for files;
the names and contents of a data folder's files; names, sizes and times for a checkpoint folder),
the content of every file an option names (a prompt file, gold labels) and of a ``source`` folder
(a benchmark's records and images), the content of the images a training mix names (hashes
cached per file by ``adamllm.content``), the identity of every local model folder a model slot
names (unless ``tiny:`` builds it), and the adamllm version. Paths inside the config file's folder are written relative
to it (``$CONFIG_DIR/...``), so a copied run folder reuses its finished stages. The runner stores
it in ``OUT/<stage>/_running.json`` when the stage starts and in ``_done.json`` when it finishes, and compares it on the next run.

It also says where the run config was (``config_file``, and ``config_dir``: its folder relative to
the output folder), which is not compared (a copied run folder is the same run): relative paths
the config left to components (a domain's declared pairs source, its default benchmarks) are
relative to that folder, and ``adamllm inspect`` reads them from there whatever the current folder.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Iterable

from . import __version__


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [{"d": 2}]}`` -> ``{"a.b": 1, "c.0.d": 2}``."""
    if isinstance(value, dict):
        if not value and prefix:
            return {prefix: {}}
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        if not value:
            return {prefix: []}
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}.{i}"))
        return out
    return {prefix: value}


def component_dump(component: Any) -> Any:
    """A validated section as plain data: ``{"type": ..., **options}`` (model slots included)."""
    if component is None:
        return None
    if isinstance(component, list):
        return [component_dump(c) for c in component]
    options = component.options
    dumped = options.model_dump(mode="json") if hasattr(options, "model_dump") else {}
    return {"type": component.type, **dumped}


def identity(path: Path, cache: Any = None) -> dict[str, Any] | None:
    """What identifies an input: a file's size and sha256; a data folder's files' names and
    contents (with ``cache``, an ``adamllm.content.ContentCache``: hashed once, reused while the
    file is unchanged); a checkpoint folder's (or, without a cache, any folder's) files' names,
    sizes and times: weights are too large to hash on every run."""
    if cache is not None and (path.is_file() or (path.is_dir() and not _checkpoint(path))):
        from .content import content_identity

        return content_identity(path, cache)
    if path.is_file():
        from .content import file_sha256

        return {"size": path.stat().st_size, "sha256": file_sha256(path)[:32]}
    if path.is_dir():
        digest = hashlib.sha256()
        count = 0
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
            count += 1
        return {"files": count, "digest": digest.hexdigest()[:32]}
    return None


def _checkpoint(path: Path) -> bool:
    """A model folder (``config.json`` at its top): identified by names, sizes and times."""
    return (path / "config.json").is_file()


#: The keys of a backbone section (the run's or a component's model slot) that choose how the model
#: generates, not what it is: a stage that trains (tune, train) leaves them out of its fingerprint,
#: so that moving synthesis or evaluation to vLLM does not tune or train again.
GENERATION_ONLY = re.compile(r"^(?:backbone|[\w.]*\.model)\.(?:engine|vllm)(?:\.|$)")


def stage_fingerprint(config: Any, stage: Any, inputs: Iterable[Path], cache: Any = None,
                      named_files: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stage's fingerprint (see the module's docstring). ``cache``: the run's
    ``adamllm.content.ContentCache`` (files and data folders identified by content);
    ``named_files``: per file of records (a mix), the folder the images they name resolve under;
    those images are identified by their contents as one entry, ``images named by <file>``;
    ``changed_files`` then lists the files whose content changed since they were last hashed
    (not compared: it is for the message)."""
    settings: dict[str, Any] = {"seed": config.seed}
    for entry in stage.depends_on:  # a section ("trainer") or a part of one ("synthesizer.model")
        section = entry.split(".")[0]
        flat = flatten({section: component_dump(getattr(config, section))})
        settings.update({k: v for k, v in flat.items() if k == entry or k.startswith(entry + ".")})
    if stage.kind == "trainer":  # training does not depend on how the model would generate
        settings = {k: v for k, v in settings.items() if not GENERATION_ONLY.match(k)}
    settings.update(data_settings(config, stage.name))
    named = [Path(v) for v in settings.values() if _is_local_file(v)]  # a filter's prompt file, say
    named += [Path(v) for k, v in settings.items() if _is_model_folder(k, v, settings)]
    if cache is not None:  # a benchmark's source folder (its records and images), say
        named += [Path(v) for k, v in settings.items() if _is_source_folder(k, v)]
    source = getattr(config, "source", None)
    base = str(Path(source).parent) if source else None
    found = {portable(str(p), base): identity(Path(p), cache) for p in [*inputs, *named]}
    if cache is not None:
        from .content import listing_digest

        for listing, root in (named_files or {}).items():
            found[f"images named by {portable(listing, base)}"] = listing_digest(cache, Path(listing), Path(root))
    changed = [portable(p, base) for p in cache.changed_names()] if cache is not None else []
    return {
        "adamllm_version": __version__,
        "config": {k: portable(v, base) for k, v in settings.items()},
        "inputs": found,
        **config_location(config),
        **({"changed_files": changed} if changed else {}),
    }


#: How a fingerprint writes a path inside the config file's folder.
CONFIG_DIR = "$CONFIG_DIR"


def portable(value: Any, base: str | None) -> Any:
    """``value`` with a path inside ``base`` (the config file's folder) written relative to it, so
    a run folder copied elsewhere together with its config and inputs is still the same run (and
    its finished stages are reused); anything else as it is."""
    if base and isinstance(value, str) and (value == base or value.startswith(base.rstrip("/") + "/")):
        return CONFIG_DIR + value[len(base.rstrip("/")):]
    return value


def resolve_portable(value: Any, base: Path | None) -> Any:
    """The inverse of ``portable`` for a reader that knows the config's folder (``adamllm inspect``)."""
    if base is not None and isinstance(value, str) and value.startswith(CONFIG_DIR):
        return str(base) + value[len(CONFIG_DIR):]
    return value


def config_location(config: Any) -> dict[str, str]:
    """``config_file`` (absolute) and ``config_dir`` (its folder relative to the output folder) of a
    config read from a file; ``{}`` for one built in code."""
    source = getattr(config, "source", None)
    if source is None:
        return {}
    source = Path(source).resolve()
    return {"config_file": str(source),
            "config_dir": os.path.relpath(source.parent, Path(config.output_dir).resolve())}


def data_settings(config: Any, stage: str) -> dict[str, Any]:
    """The ``data`` entries a stage reads, as fingerprint settings (``adamllm.inputs.DataInput.fingerprint``):
    its own ``data.<stage>``, and for the stages that read the image-caption pairs, ``data.synthesize``
    (the pairs file and their image folder)."""
    from .inputs import PAIR_STAGES, from_string

    inputs = getattr(config, "data_inputs", None) or {}
    names = [stage, *(["synthesize"] if stage in PAIR_STAGES and stage != "synthesize" else [])]
    found: dict[str, Any] = {}
    for name in names:
        given = inputs.get(name) or (from_string(config.data[name]) if name in config.data else None)
        if given is not None:
            found.update(given.fingerprint(name))
    return found


def _is_local_file(value: Any) -> bool:
    """An option naming a file (resolved to an absolute path when the config was validated): its
    content is an input too, so editing the file is a change. Folders are left out (a model
    folder that a ``tiny:`` option builds on first use must not look changed afterwards)."""
    if not isinstance(value, str) or not value.startswith("/") or "\n" in value or len(value) > 4096:
        return False
    try:
        return Path(value).is_file()
    except OSError:
        return False


def _is_source_folder(key: str, value: Any) -> bool:
    """A component's ``source`` option naming a local folder (a benchmark's records and images)."""
    if not (key == "source" or key.endswith(".source")) or not isinstance(value, str) or not value.startswith("/"):
        return False
    try:
        return Path(value).is_dir()
    except OSError:
        return False


def _is_model_folder(key: str, value: Any, settings: dict[str, Any]) -> bool:
    """A model slot's local checkpoint folder (``backbone.model``, ``synthesizer.model.model``):
    retrained or replaced weights are a changed input. A folder that ``tiny:`` builds on first use
    is left out: its seed and size are in the config already."""
    if not (key == "model" or key.endswith(".model")) or not isinstance(value, str) or not value.startswith("/"):
        return False
    if settings.get(key[: -len("model")] + "tiny"):
        return False
    try:
        return Path(value).is_dir()
    except OSError:
        return False


def changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Human-readable differences, e.g. ``trainer.learning_rate: 1e-05 -> 2e-05``; [] if the same."""
    if old is None:
        return []
    found = []
    if old.get("adamllm_version") != new["adamllm_version"]:
        found.append(f"adamllm version: {old.get('adamllm_version')} -> {new['adamllm_version']}")
    before, after = old.get("config", {}), new["config"]
    for key in sorted(set(before) | set(after)):
        if before.get(key, "<unset>") != after.get(key, "<unset>"):
            found.append(f"{key}: {before.get(key, '<unset>')} -> {after.get(key, '<unset>')}")
    before, after = old.get("inputs", {}), new["inputs"]
    inputs = [f"input {key} {'changed' if key in before and key in after else 'differs'}"
              for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
    if inputs and new.get("changed_files"):
        inputs[-1] += f" (changed file(s): {', '.join(new['changed_files'])})"
    return found + inputs


def output_signature(path: Path, cache: Any) -> dict | None:
    """A finished stage's output file as it left it (size, sha256, lines), for ``_done.json``:
    an output edited afterwards (a triplet deleted by hand) is noticed on the next run. None for a
    folder (a model)."""
    if not path.is_file():
        return None
    sha = cache.sha(path)
    with path.open("rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    return {"size": path.stat().st_size, "sha256": (sha or "")[:32], "lines": lines}


def output_edited(done: dict | None, path: Path, cache: Any) -> str | None:
    """Why a finished stage's output is not the one it wrote (edited, truncated, deleted), or None."""
    recorded = (done or {}).get("output")
    if not recorded:
        return None
    if not path.is_file():
        return f"{path} was deleted after the stage finished"
    sha = cache.sha(path)
    if path.stat().st_size == recorded.get("size") and (sha or "")[:32] == recorded.get("sha256"):
        return None
    now = output_signature(path, cache)
    return (f"{path} was changed after the stage finished ({recorded.get('lines')} lines when it finished, "
            f"{now['lines'] if now else 0} now)")
