"""Where a run's pairs and benchmarks are, for the data card (and its overlap section): from ``--config``, else from the
fingerprints the runner left in ``RUN_DIR/<stage>/_done.json`` (or ``_running.json``).

A fingerprint holds the stage's config sections flattened (``benchmarks.0.source``) with paths
already resolved, so the sections the card needs (``domain``, ``data.synthesize``, ``benchmarks``)
can be rebuilt and validated without the original file: the synthesize and compose fingerprints
name the domain and the pairs file, the evaluate fingerprint the benchmarks. Only those sections
are validated, so a card can be made where the run's synthesizer or trainer plugins are missing.

What the config left relative (a domain's declared pairs source, its default benchmarks: the toy
domain's ``world/...``) is relative to the config's folder, never to the current one: the card
finds that folder from the fingerprints' ``config_dir`` (relative to the run folder, so a copied
run works) or ``config_file``, else, for runs that predate them, from the pairs file the synthesize
or compose stage read (its path ends with the domain's relative source).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .io import SymlinkLoopError, iter_records, resolve_under
from .layout import DONE, RUNNING

#: Perceptual hashes by file content, kept in the run directory so a rerun only decodes new images.
HASH_CACHE = ".card_hashes.jsonl"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
NEEDED = ("seed", "data", "domain", "benchmarks")


def whole_fingerprint(run_dir: Path, stage: str) -> dict | None:
    """A stage's fingerprint (finished run, else an interrupted one), or None."""
    for name in (DONE, RUNNING):
        try:
            data = json.loads((run_dir / stage / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        data = data.get("fingerprint", data) if name == DONE and isinstance(data, dict) else data
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            return data
    return None


def fingerprint(run_dir: Path, stage: str) -> dict | None:
    """The config part of a stage's fingerprint (finished run, else an interrupted one), or None;
    paths it wrote relative to the config's folder (``$CONFIG_DIR/...``) made absolute again."""
    from .fingerprint import resolve_portable

    data = whole_fingerprint(run_dir, stage)
    if data is None:
        return None
    relative, file = data.get("config_dir"), data.get("config_file")
    base = (run_dir / relative).resolve() if isinstance(relative, str) and (run_dir / relative).is_dir() else \
        Path(file).parent if isinstance(file, str) else None
    return {key: resolve_portable(value, base) for key, value in data["config"].items()}


def config_folder(run_dir: Path, pm: Any = None) -> tuple[Path | None, str | None]:
    """The folder of the run's config (``(folder, config file name)``), from the stages'
    fingerprints; ``(None, None)`` when nothing tells."""
    from .stages import STAGES

    prints = [f for f in (whole_fingerprint(run_dir, stage) for stage in STAGES) if f is not None]
    for found in prints:
        name = Path(found["config_file"]).name if isinstance(found.get("config_file"), str) else None
        relative = found.get("config_dir")
        if isinstance(relative, str) and (run_dir / relative).is_dir():
            return (run_dir / relative).resolve(), name
        if name is not None and Path(found["config_file"]).is_file():
            return Path(found["config_file"]).parent, name
    return _folder_from_pairs(prints, pm), None


def _folder_from_pairs(prints: list[dict], pm: Any) -> Path | None:
    """A run from before fingerprints named their config: the folder that the domain's relative pairs
    source was read under (an input of the synthesize or compose stage ending with that path)."""
    if pm is None:
        return None
    for found in prints:
        domain = found["config"].get("domain.type")
        try:
            spec = pm.spec("domain", domain) if isinstance(domain, str) else None
        except (KeyError, ValueError):
            spec = None
        for source in getattr(spec, "sources", ()) or ():
            location = Path(source.location)
            if location.is_absolute() or "://" in source.location:
                continue
            for path in map(Path, found.get("inputs") or {}):
                if len(path.parts) > len(location.parts) and path.parts[-len(location.parts):] == location.parts:
                    return Path(*path.parts[:-len(location.parts)])
    return None


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``adamllm.fingerprint.flatten``: ``{"a.0.b": 1}`` -> ``{"a": [{"b": 1}]}``."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value

    def lists(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        node = {k: lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
        return node

    return lists(root)


@dataclass
class RunLayout:
    """The config sections the card reads, and what is known about where they came from."""

    sections: dict[str, Any] = field(default_factory=dict)
    base_dir: Path | None = None  # the config's folder: what its relative paths are relative to
    origin: str = "fingerprints"
    benchmarks_known: bool = False  # False: no --config and stage evaluate never started
    train_data: str | None = None  # data.train of the train stage, when the mix came from elsewhere
    config_name: str = "config.yaml"  # the config file's name in base_dir (named in messages only)


def read_layout(run_dir: Path, config_file: Path | None = None, pm: Any = None) -> RunLayout:
    """The sections from ``config_file`` if given, else from the fingerprints (``pm``: to find the
    config's folder of a run whose fingerprints do not name it, from the domain's pairs source)."""
    if config_file is not None:
        from .config import load_yaml

        data = load_yaml(config_file)
        sections = {k: data[k] for k in NEEDED if k in data}
        data_keys = sections.get("data") if isinstance(sections.get("data"), dict) else {}
        sections["data"] = {k: v for k, v in data_keys.items() if k == "synthesize"}
        train = data_keys.get("train")
        train = train.get("path") if isinstance(train, dict) else train  # data.train's mapping form
        return RunLayout(sections, config_file.resolve().parent, f"config {config_file}", True, train,
                         config_file.name)
    sections: dict[str, Any] = {}
    for stage in ("compose", "synthesize"):  # both name the domain and the pairs
        config = fingerprint(run_dir, stage)
        if config is not None:
            rebuilt = unflatten(config)
            sections.setdefault("seed", rebuilt.get("seed", 0))
            if "domain" in rebuilt:
                sections.setdefault("domain", rebuilt["domain"])
            if stage == "synthesize" and "synthesize" in rebuilt.get("data", {}):
                sections["data"] = {"synthesize": rebuilt["data"]["synthesize"]}
    evaluate = fingerprint(run_dir, "evaluate")
    if evaluate is not None:
        sections["benchmarks"] = unflatten(evaluate).get("benchmarks") or []
    train = fingerprint(run_dir, "train")
    folder, name = config_folder(run_dir, pm)
    return RunLayout(sections, folder, "fingerprints", evaluate is not None,
                     (train or {}).get("data.train") or (train or {}).get("data.train.path"), name or "config.yaml")


def _validated(layout: RunLayout, run_dir: Path, pm: Any, keys: tuple[str, ...]) -> Any:
    from .config import validate_config

    data = {"output_dir": str(run_dir.resolve()), **{k: v for k, v in layout.sections.items() if k in keys}}
    source = layout.base_dir / layout.config_name if layout.base_dir is not None else None
    return validate_config(data, pm, source=source, base_dir=layout.base_dir)  # source: domains resolve under it


def iter_pairs(layout: RunLayout, run_dir: Path, pm: Any) -> Iterator[Any]:
    """The run's image-caption pairs as the synthesize stage read them (bad ones left out, as the
    stage's quarantine already counted them); raises ``ValueError``/``OSError`` naming the problem."""
    from .pairs import PairStats
    from .quarantine import Quarantine
    from .runner import StageContext

    if not layout.sections.get("domain") and not (layout.sections.get("data") or {}).get("synthesize"):
        raise ValueError("the run names no pairs source (no domain, no data.synthesize)")
    cfg = _validated(layout, run_dir, pm, ("seed", "data", "domain"))
    yield from StageContext("synthesize", cfg, pm).pairs(PairStats(quarantine=Quarantine(None, "skip")))


def benchmark_sections(layout: RunLayout, run_dir: Path, pm: Any) -> tuple[list[Any], list[str]]:
    """The validated benchmark selections the evaluate stage uses (the config's, else the domain's
    defaults) and problems met (a benchmark whose plugin is not installed, ...)."""
    from .config import validate_section

    problems: list[str] = []
    raw = list(layout.sections.get("benchmarks") or [])
    where = "benchmarks"
    domain = layout.sections.get("domain")
    if not raw and isinstance(domain, dict) and domain.get("type"):
        try:
            spec = pm.spec("domain", domain["type"])
        except (KeyError, ValueError) as exc:
            return [], [str(exc)]
        raw = [{"type": b} if isinstance(b, str) else b for b in spec.defaults.get("benchmarks", [])]
        where = f"domain {domain['type']!r} defaults"
    sections = []
    for i, section in enumerate(raw):
        component, errors = validate_section(pm, "benchmark", section, ("benchmarks", i), layout.base_dir)
        if errors:
            problems.append(f"{where} {i}: " + "; ".join(f"{loc}: {msg}" for loc, msg in errors))
        else:
            sections.append(component)
    return sections, problems


def benchmark_images(section: Any, pm: Any) -> list[Any]:
    """The images of one benchmark's samples (one ``ImageRef`` per distinct path or byte string)."""
    from .evaluation.stage import build_task
    from .overlap import ImageRef
    from .quarantine import Quarantine

    task = build_task(pm, section.type, section.options)
    bench = task.benchmark
    try:
        import inspect

        takes_quarantine = "quarantine" in inspect.signature(bench.samples).parameters
    except (TypeError, ValueError):
        takes_quarantine = False
    samples = bench.samples(quarantine=Quarantine(None, "skip")) if takes_quarantine else bench.samples()
    refs: dict[Any, ImageRef] = {}
    for sample in samples:
        image = sample.image
        if image is None:
            continue
        if isinstance(image, (str, Path)):
            key, label = ("path", str(image)), str(image)
        elif isinstance(image, (bytes, bytearray, memoryview)):
            key, label = ("bytes", bytes(image)), f"{task.name} sample {sample.id} (embedded image)"
        else:
            key, label = ("object", id(image)), f"{task.name} sample {sample.id} (decoded image)"
        ref = refs.get(key)
        if ref is None:
            ref = refs[key] = ImageRef(label, str(image) if key[0] == "path" else image, task.name)
        ref.samples.append(str(sample.id))
    return list(refs.values())


def against_images(path: Path, problems: list[str] | None = None) -> list[Any]:
    """``--against``: a folder (every image file under it), a benchmark file (JSONL or JSON array
    whose records name an ``image``/``images`` under the file's folder) or one image file. A bad
    record of the file (malformed, broken Unicode, an image path that is a symlink loop) is named
    in ``problems`` and the rest is checked: one record must not cancel the whole check."""
    problems = problems if problems is not None else []
    from .overlap import ImageRef

    group = f"--against {path}"
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        return [ImageRef(str(p), str(p), group) for p in files]
    if not path.is_file():
        raise FileNotFoundError(f"--against {path}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [ImageRef(str(path), str(path), group)]
    refs: dict[str, ImageRef] = {}
    for where, record in iter_records(path, on_error=lambda at, message: problems.append(f"{at}: {message}")):
        images = record.get("images", record.get("image"))
        for image in [images] if isinstance(images, str) else images if isinstance(images, list) else []:
            if isinstance(image, str):
                try:
                    full = str(resolve_under(path.parent, image))
                except SymlinkLoopError as exc:
                    problems.append(f"{where}: {exc}")
                    continue
                refs.setdefault(full, ImageRef(full, full, group)).samples.append(str(record.get("id", where)))
    if not refs:
        raise ValueError(f"--against {path}: no image paths in its records (expected 'image' or 'images')")
    return list(refs.values())


def train_images(mix: Path) -> list[Any]:
    """Each distinct image of a training mix (ShareGPT JSONL: ``images``), relative paths read
    against the mix's folder."""
    from .overlap import ImageRef

    seen: dict[str, ImageRef] = {}
    for _where, record in iter_records(mix, tolerant=True, on_error=lambda *_: None):
        images = record.get("images") or []
        for image in [images] if isinstance(images, str) else images if isinstance(images, list) else []:
            if isinstance(image, str) and image:
                full = image if Path(image).is_absolute() else str(mix.parent / image)
                seen.setdefault(full, ImageRef(full, full, "train"))
    return list(seen.values())


def overlap_section(run_dir: Path, pm: Any, layout: RunLayout, mix: Path | None, against: Iterable[str | Path],
                    enabled: bool, workers: int, listed: int, threshold: int) -> tuple[dict, Any]:
    """The overlap section's numbers (``status`` says whether and why not it ran) and the result."""
    from .overlap import OverlapUnavailable, check_overlap, require_imagehash

    if not enabled:
        return {"status": "skipped", "message": "overlap check skipped (--no-overlap)"}, None
    if mix is None:
        message = "no training mix (compose/mix.jsonl): no overlap check ran"
        return {"status": "no_training_mix", "message": message}, None
    groups: dict[str, list] = {}
    problems: list[str] = []
    for path in against:
        refs = against_images(Path(path), problems)
        if refs:
            groups[refs[0].group] = refs
    sections, errors = benchmark_sections(layout, run_dir, pm) if layout.benchmarks_known else ([], [])
    problems += errors
    for section in sections:
        try:
            groups[section.type] = benchmark_images(section, pm)
        except Exception as exc:  # noqa: BLE001 - a benchmark that cannot load here (offline hub, ...)
            problems.append(f"benchmark {section.type!r}: its images could not be read: {str(exc).splitlines()[0]}")
    base = {"threshold": threshold, "benchmark_problems": problems}
    if not groups:
        if problems:
            message = "no benchmark's images could be read, so no overlap check ran: " + "; ".join(problems)
            return {**base, "status": "benchmarks_unreadable", "message": message}, None
        if layout.benchmarks_known:
            message = ("no benchmark was configured (no benchmarks in the config, and the domain names no default "
                       "ones): no overlap check ran; pass --against DIR to compare with a folder of test images")
            return {**base, "status": "no_benchmark", "message": message}, None
        message = ("no overlap check ran: the run's benchmarks are unknown (stage evaluate has not run, and its "
                   "fingerprint is what names them): pass --config CONFIG or --against DIR")
        return {**base, "status": "benchmarks_unknown", "message": message}, None
    try:
        require_imagehash()
    except OverlapUnavailable as exc:
        return {**base, "status": "unavailable", "message": f"no overlap check ran: {exc}"}, None
    result = check_overlap(train_images(mix), groups, threshold=threshold, cache=run_dir / HASH_CACHE,
                           workers=workers)
    numbers = {**result.as_dict(listed), "benchmark_problems": problems}
    numbers["message"] = overlap_message(numbers)
    return numbers, result


def overlap_message(numbers: dict) -> str:
    """The overlap section's one line: exact copies are an alarm, near matches something to look at."""
    exact, near, threshold = numbers["exact_pairs"], numbers["near_pairs"], numbers["threshold"]
    said = []
    if exact:
        said.append(f"{exact} training/benchmark image pair(s) are exact copies (the same file bytes)")
    if near:
        said.append(f"{near} possible near-duplicate pair(s), look at both: grey perceptual hashes within "
                    f"{threshold} bits and the same colour layout")
    if not said:
        said.append(f"no training image is a copy of a benchmark image (the same bytes) or a possible "
                    f"near-duplicate (phash within {threshold} bits and the same colours)")
    message = "; ".join(said)
    if numbers.get("grey_only_pairs"):
        message += (f"; {numbers['grey_only_pairs']} pair(s) with close grey hashes but other colours were not "
                    f"flagged")
    flat = numbers["train_flat"] + sum(b["flat"] for b in numbers["benchmarks"].values())
    if flat:
        message += f"; {flat} flat (one-colour) image(s) compared by file hash only"
    return message
