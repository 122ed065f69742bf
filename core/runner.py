"""The pipeline runner: the stages of ``adamllm.stages.STAGE_TABLE``, in order.

Stages exchange typed records (``adamllm.records``) through files under the output directory::

    OUT/tune/model/ (a tuned synthesizer, used by synthesize when present)
    OUT/synthesize/triplets.jsonl   OUT/filter/verdicts.jsonl   OUT/compose/mix.jsonl
    OUT/train/model/                OUT/evaluate/report.json

A stage reads the previous stage's file, or ``data.<stage>`` from the config, so any stage can run
alone. Reruns are decided by fingerprints (``adamllm.fingerprint``): a finished stage whose config
sections and inputs are unchanged is skipped; one whose config or input changed is rerun from
scratch, after saying which fields changed, and so is every later stage; a stage that was
interrupted resumes if nothing changed, else starts over. ``--force`` reruns everything asked for.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from .fingerprint import changes, output_edited, output_signature, stage_fingerprint
from .layout import DONE, REJECTED, RUNNING, RunLayout
from .registry import PluginManager
from .specs import resolve
from .stages import STAGE_TABLE, STAGES, Stage, StageError, stage as stage_row

__all__ = ["StageContext", "StageError", "run_pipeline", "done_marker"]

PROMPTS = "prompts.jsonl"


@dataclass
class StageContext:
    """What a stage implementation gets: the validated config, plugins, its folder and inputs."""

    name: str
    config: Any
    plugins: PluginManager
    summary: dict[str, Any] = field(default_factory=dict)
    force: bool = False  # start from scratch (no resuming from this stage's partial work)
    echo: Callable[[str], None] = print
    pair_limit: int | None = None  # read only the first N pairs (``adamllm run --preview N``)
    _noticed: set = field(default_factory=set, repr=False)
    #: ``OUT/<stage>/prompts.jsonl`` under ``--preview``: components that prompt a model record the
    #: exact prompts they send there (``record_prompts``); None otherwise.
    prompt_log: Path | None = None

    def record_prompts(self, prompts: list[dict]) -> None:
        """Append ``{"id", "prompt", ...}`` records to ``prompt_log`` (nothing when it is None)."""
        if self.prompt_log is None or not prompts:
            return
        self.prompt_log.parent.mkdir(parents=True, exist_ok=True)
        with self.prompt_log.open("a", encoding="utf-8") as handle:
            for record in prompts:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    @property
    def stage(self) -> Stage:
        return stage_row(self.name)

    @property
    def output_dir(self) -> Path:
        return self.config.output_dir

    @property
    def stage_dir(self) -> Path:
        path = self.config.output_dir / self.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def output_path(self, stage: str | None = None) -> Path:
        return RunLayout(self.config.output_dir).output(stage or self.name)

    def input_path(self, previous_stage: str | None = None) -> Path:
        """The config's ``data.<this stage>`` if given, else the previous stage's output."""
        from .paths import looks_like_hub_id

        previous_stage = previous_stage or self.stage.inputs[0]
        override = self.config.data.get(self.name) if previous_stage == self.stage.inputs[0] else None
        path = Path(override) if override else self.output_path(previous_stage)
        if override and not path.exists() and looks_like_hub_id(override):
            return path  # a hub dataset id (data.train: AdaptLLM/biomed-visual-instructions, say)
        if not path.exists():
            hint = f"set data.{self.name} in the config" if not override else "check data." + self.name
            raise StageError(
                f"stage {self.name!r} needs {path}, which does not exist: run stage "
                f"{previous_stage!r} first or {hint}"
            )
        return path

    def data_input(self, stage: str | None = None) -> Any:
        """The config's ``data.<stage>`` entry (default: this stage's) as an
        ``adamllm.inputs.DataInput`` (location, image folder, dataset config...), or None."""
        from .inputs import from_string

        stage = stage or self.name
        given = (getattr(self.config, "data_inputs", None) or {}).get(stage)
        if given is None and stage in self.config.data:
            given = from_string(self.config.data[stage])
        return given

    def input_paths(self) -> list[Path]:
        """Every file or folder this stage reads that exists now (for its fingerprint); a tune
        stage's image folder given apart from its seed folder too (as the seed folder's is)."""
        from .inputs import PAIR_STAGES

        paths = []
        if self.name in PAIR_STAGES:
            paths += [source.path for source in self._pair_sources(required=False)]
        if self.name in self.config.data:
            paths.append(Path(self.config.data[self.name]))
            given = self.data_input()
            if self.name == "tune" and given is not None and given.images:
                paths.append(Path(given.images))
            previous = self.stage.inputs[1:]
        else:
            previous = self.stage.inputs
        paths += [self.output_path(s) for s in previous]
        if self.name == "synthesize":  # a tuned synthesizer model replaces the slot's model
            paths += [p for p in [self.tuned_synthesizer_model()] if p is not None]
        return [p for p in paths if p.exists()]

    def named_files(self) -> dict[str, Any]:
        """The files of records this stage reads, each with the folder their images resolve under
        (the images are in its fingerprint by content, so a replaced one reruns it): the image-caption
        pairs (synthesize, compose; core's readers only) and, for ``train`` reading a local JSONL
        or JSON file, those of its records. A hub dataset or a dataset folder: none here (a
        folder's files are its identity)."""
        from .inputs import PAIR_STAGES

        if self.name in PAIR_STAGES:
            return {str(s.path): str(s.images or s.path.parent)
                    for s in self._pair_sources(required=False) if s.reader is None and s.path.is_file()}
        if self.name != "train":
            return {}
        try:
            path = self.input_path()
        except StageError:
            return {}
        if not path.is_file():
            return {}
        given = self.data_input()
        root = (given.images if given is not None else None) or \
            getattr(getattr(self.config.trainer, "options", None), "image_root", None) or path.parent
        return {str(path): str(root)}

    def tuned_synthesizer_model(self) -> Path | None:
        """``OUT/tune/model`` when the ``tune`` stage finished and wrote it (the synthesize stage then
        uses it instead of the synthesizer slot's model), else None (tune skipped or never run)."""
        done = _read_json(done_marker(self.config.output_dir, "tune"))
        model = self.output_path("tune")
        return model if done is not None and done.get("model_dir") and model.is_dir() else None

    def quarantine(self, name: str | None = None) -> Any:
        """This stage's ``Quarantine`` (``OUT/<stage>/rejected.jsonl``, or ``<name>/rejected.jsonl``
        inside it), under the config's ``on_bad_record`` policy; emptied when the stage starts over."""
        from .quarantine import Quarantine

        path = self.stage_dir / (f"{name}/{REJECTED}" if name else REJECTED)
        if self.force:
            path.unlink(missing_ok=True)
        return Quarantine(path, self.config.on_bad_record)

    # -- components ----------------------------------------------------------------------
    def component(self, section: str | None = None, kind: str | None = None) -> Any:
        """Build the component selected in ``section`` (default: this stage's kind's section)."""
        from .stages import SECTIONS, kind as kind_row

        if section is None:
            kind = kind or self.stage.kind
            section = kind_row(kind).section
        kind = kind or SECTIONS[section]
        selection = getattr(self.config, section)
        if selection is None:
            raise StageError(f"stage {self.name!r} needs a {section!r} section in the config")
        spec = self.plugins.spec(kind, selection.type)
        return spec.build(selection.options)

    def build_model(self, selection: Any, model: str | None = None) -> Any:
        """The backbone adapter of a validated selection (the ``backbone`` section or any
        component's model slot), for ``model`` if given (e.g. the trained model).

        With ``tiny: SIZE``, a missing checkpoint folder is built first, so a demo config runs on
        a fresh machine offline (paths were resolved when the config was validated).
        """
        spec = self.plugins.spec("backbone", selection.type)
        options = selection.options
        if model is not None:
            options = options.model_copy(update={"model": str(model)})
        elif getattr(options, "tiny", None) and not Path(options.model).exists():
            if spec.tiny is None:
                raise StageError(f"backbone {selection.type!r} has no tiny builder; set a real model")
            words = {"words": tuple(options.tiny_words)} if getattr(options, "tiny_words", None) else {}
            try:
                resolve(spec.tiny)(Path(options.model), size=options.tiny, seed=self.config.seed, **words)
            except TypeError as exc:
                if words and "words" in str(exc):
                    raise StageError(f"backbone {selection.type!r}: its tiny builder takes no tiny_words") from None
                raise
        return spec.build(options)

    def backbone(self, model: str | None = None) -> Any:
        """The configured ``backbone`` section's adapter (see ``build_model``)."""
        if self.config.backbone is None:
            raise StageError(f"stage {self.name!r} needs a 'backbone' section in the config")
        return self.build_model(self.config.backbone, model)

    # -- domain inputs -------------------------------------------------------------------
    def _pair_sources(self, required: bool = True) -> list[PairSource]:
        from .pairs import locate

        given = self.data_input("synthesize")
        domain = self.config.domain
        domain_images = getattr(getattr(domain, "options", None), "images", None)
        if given is not None:
            return [PairSource(Path(given.location), "sharegpt", None, given.images or domain_images)]
        if domain is None:
            if required:
                raise StageError(f"stage {self.name!r} needs image-caption pairs: a 'domain' section whose "
                                 f"domain declares sources, or data.synthesize (a JSON or JSONL pairs file)")
            return []
        spec = self.plugins.spec("domain", domain.type)
        wanted = getattr(domain.options, "source", None)
        sources = [s for s in spec.sources if wanted in (None, s.name)][:1]
        if not sources:
            if not required:
                return []
            names = ", ".join(s.name for s in spec.sources) or "none"
            raise StageError(f"domain {domain.type!r} has no image-caption source {wanted or ''} "
                             f"(its sources: {names}); set data.synthesize to a pairs file")
        source = sources[0]
        if source.location.startswith("hf://") and not required:
            return []  # not downloaded just to fingerprint; the stage downloads it
        base = self.config.source.parent if self.config.source else None
        return [PairSource(locate(source.location, base), source.format, source.reader, domain_images)]

    def pair_images_root(self) -> Path | None:
        """The folder the domain's pair images must lie in (the image folder the config names,
        else that of its pairs file, whose sibling ``images/`` is inside it), or None when the run
        has no pairs source; the compose stage names its ``images/`` copies by their paths under it."""
        given = self.data_input("synthesize")
        explicit = given.images if given is not None and given.images else \
            getattr(getattr(self.config.domain, "options", None), "images", None)
        if explicit:
            return Path(explicit)
        sources = self._pair_sources(required=False)
        return sources[0].path.parent if sources else None

    def pair_total(self) -> int | None:
        """About how many pairs ``pairs()`` will give (records in the source, bad ones included,
        up to ``domain.limit``), for a progress bar's ETA; None for a plugin's own format."""
        from .io import DataError, count_records

        sources = self._pair_sources()
        if any(source.reader is not None for source in sources):
            return None
        try:
            total = sum(count_records(source.path) for source in sources)
        except (OSError, DataError):
            return None  # the stage's reader says what is wrong with the file
        limit = self._limit()
        return min(total, limit) if limit is not None else total

    def _limit(self) -> int | None:
        limits = [getattr(getattr(self.config.domain, "options", None), "limit", None), self.pair_limit]
        return min((n for n in limits if n is not None), default=None)

    def pairs(self, stats: Any = None) -> Iterator[Any]:
        """The domain's image-caption pairs (``data.synthesize``, else the domain's declared source
        chosen by ``domain.source``), as ``ImageCaptionPair`` records, whatever reader made them;
        image paths resolve as ``adamllm.pairs.PairImages`` says, identically in every stage.
        A notice about them (the sibling ``images/`` fallback) is echoed once per stage."""
        from .pairs import PairStats, read_pairs

        stats = stats if stats is not None else PairStats()
        if stats.note is None:
            stats.note = self._notice
        for source in self._pair_sources():
            for _where, pair in read_pairs(source.path, source.format, source.reader, image_root=source.images,
                                           limit=self._limit(), stats=stats):
                yield pair

    def _notice(self, message: str) -> None:
        if message not in self._noticed:
            self._noticed.add(message)
            self.echo(f"[{self.name}] {message}")


class PairSource(NamedTuple):
    """A pairs file to read: its local path, format, plugin reader (None: core's) and image folder
    (None: beside the file, else its sibling ``images/``)."""

    path: Path
    format: str
    reader: Any
    images: str | None


def _quiet(_message: str) -> None:
    pass


def done_marker(output_dir: Path, stage: str) -> Path:
    return RunLayout(output_dir).done(stage)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _decide(done: dict | None, running: dict | None, fingerprint: dict, force: bool,
            reran: str | None) -> tuple[str, str]:
    """``(action, why)``: action ``skip``, ``resume`` (run, keep partial work) or ``fresh``."""
    if force:
        return "fresh", "--force"
    if reran:
        return "fresh", f"stage {reran!r} ran before it"
    if done is not None:
        if "fingerprint" not in done:
            return "fresh", "its result records no fingerprint (made by an older adamllm)"
        diff = changes(done["fingerprint"], fingerprint)
        return ("fresh", "; ".join(diff)) if diff else ("skip", "")
    if running is not None:
        diff = changes(running, fingerprint)
        if diff:
            return "fresh", "an interrupted run of it used other settings: " + "; ".join(diff)
        return "resume", ""
    return "resume", ""


def run_pipeline(
    config: Any,
    plugins: PluginManager,
    stages: list[str] | None = None,
    *,
    force: bool = False,
    echo: Callable[[str], None] = print,
    pair_limit: int | None = None,
    record_prompts: bool = False,
) -> dict[str, dict]:
    """Run ``stages`` (default: the config's) in pipeline order; returns each stage's summary.
    ``pair_limit``: the stages read only the first N image-caption pairs (a preview);
    ``record_prompts``: each stage's components record the prompts they send in
    ``OUT/<stage>/prompts.jsonl`` (a preview)."""
    wanted = stages or config.stages
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise StageError(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}")
    config.output_dir.mkdir(parents=True, exist_ok=True)
    from .content import cache_for

    with cache_for(config.output_dir) as cache:
        return _run_stages(config, plugins, wanted, force, echo, pair_limit, record_prompts, cache)


def _run_stages(config: Any, plugins: PluginManager, wanted: list[str], force: bool, echo: Callable[[str], None],
                pair_limit: int | None, record_prompts: bool, cache: Any) -> dict[str, dict]:
    from .distributed import World

    world = World()  # under a multi-process launcher: one writer of the markers, same decisions everywhere
    main_process = world.is_main
    if not main_process:
        echo = _quiet  # one voice: the main process reports for all
    summaries: dict[str, dict] = {}
    reran: str | None = None
    for row in (s for s in STAGE_TABLE if s.name in wanted):
        ctx = StageContext(row.name, config, plugins, echo=echo, pair_limit=pair_limit)
        folder = config.output_dir / row.name
        if record_prompts:
            ctx.prompt_log = folder / PROMPTS
            ctx.prompt_log.unlink(missing_ok=True)
        cache.changed.clear()
        fingerprint = stage_fingerprint(config, row, ctx.input_paths(), cache, ctx.named_files())
        done, running = _read_json(folder / DONE), _read_json(folder / RUNNING)
        action, why = _decide(done, running, fingerprint, force, reran)
        edited = output_edited(done, ctx.output_path(), cache) if action == "skip" else None
        world.barrier()  # every process decided from the same markers before the main one changes them
        if edited:
            action = "resume"
            echo(f"[{row.name}] {edited}; completing it")
        elif action == "skip":
            echo(f"[{row.name}] already done with the same config and inputs; skipping (--force reruns it)")
            summaries[row.name] = done
            continue
        elif done is not None and why != "--force":
            echo(f"[{row.name}] rerunning from scratch, it changed since it last ran: {why}")
        elif running is not None and action == "fresh" and why != "--force":
            echo(f"[{row.name}] starting over: {why}")
        else:
            echo(f"[{row.name}] {'resuming' if running is not None and action == 'resume' else 'running'}")
        ctx.force = action == "fresh"
        if main_process:
            (folder / DONE).unlink(missing_ok=True)
            _write_json(folder / RUNNING, fingerprint)
        started = time.time()
        summary = resolve(row.run)(ctx) or {}
        summary = {**ctx.summary, **summary, "seconds": round(time.time() - started, 3)}
        output = output_signature(ctx.output_path(), cache)
        if main_process:
            marker = {**summary, "fingerprint": fingerprint, **({"output": output} if output else {})}
            _write_json(folder / DONE, marker)
            (folder / RUNNING).unlink(missing_ok=True)
        world.barrier()
        summaries[row.name] = summary
        if not (edited and output == done.get("output")):  # repaired as it was: later stages stay valid
            reran = reran or row.name
        echo(f"[{row.name}] done in {summary['seconds']} s")
    return summaries
