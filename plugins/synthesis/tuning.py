"""Tuning a visual instruction synthesizer: seed conversations and the ``tune`` stage.

``tuning_conversations`` turns joined seed records (``adamllm.plugins.synthesis.seed``) into
ShareGPT records, one per image (docs/method.md §2): turn 1 is ``<image>`` + the profile's
describe request, answered by the caption; then every precise and informative pair as a user turn
``profile.ask(kind, instruction)`` answered by its answer, in an order shuffled per record by an
RNG seeded with ``(seed, record id)``. An exact ``round(blank_ratio * n)`` of the conversations
(a seeded draw) show a blank white image instead of theirs, caption and answers unchanged; an
exact ``round(mismatch_ratio * n)`` of the others (a seeded draw, default none) show another seed
record's image, caption and answers unchanged: there the image contradicts the caption, and only the
caption gives the answers, which teaches a synthesizer to take its facts from the caption even when
the image looks like something it knows (docs/shapes.md: what the toy world needed); an
optional dev split (``round(dev_ratio * n)``, a seeded draw made after the blank draw) is
returned apart and never trained. The same seeds and seed give byte-identical JSONL.

These conversations are trained under ``label_policy: after_first_turn``: no loss on the first
exchange, loss on every later token, user turns included, and on an appended end-of-text token.

The ``tune`` stage (``run_tune_stage``)
---------------------------------------
Its row in ``adamllm.stages.STAGE_TABLE`` comes before ``synthesize``, with kind ``trainer`` and
``depends_on=("synthesizer", "trainer")``. The kind is the component kind a stage *runs*: tune
runs the trainer (built from the ``trainer`` section through the registry, default ``sft``), on
the model of the synthesizer's slot (``synthesizer.model``), so both sections are in its
fingerprint. Kind ``synthesizer`` would misname it and would also make "the first stage of kind
synthesizer" (the stage-component contract suites look stages up that way) the tune stage.
(Because the whole synthesizer section is fingerprinted, changing a generation setting there
also reruns tune; the sections are the fingerprint's unit.)

Seed data: ``data.tune`` names one **folder**::

    captions.json  precise.json  informative.json  images/

or, to keep the released files' names, the same folder with a ``tune.yaml`` naming them
(``captions:``, ``precise:``, ``informative:``, ``image_root:``, paths inside the folder) and
optionally ``blank_ratio:`` (default 0.1), ``mismatch_ratio:`` (default 0) and ``dev_ratio:`` (default 0). A folder, not a loose
manifest, because the run's fingerprint of ``data.tune`` then covers every seed file and image.
The images may also lie elsewhere: ``data.tune: {path: SEEDS, images: DIR}`` (``DIR`` relative to
the config file, fingerprinted as the folder is). Image paths of the seed files resolve under the
image root and must stay inside it: as written (the ALLaVA download layout), else by base name (a
flat folder such as ``images_191task_1k``; see ``adamllm.plugins.synthesis.seed``).

It writes ``OUT/tune/seed_conversations.jsonl`` (``seed_dev.jsonl`` with a dev split),
``blank.png``, the trainer's files and the tuned model in ``OUT/tune/model``, which the synthesize
stage uses instead of the slot's model (``StageContext.tuned_synthesizer_model()``). The records'
image paths are absolute (the seed images were confined to their root when read, the blank image
is the stage's own). Without ``data.tune`` the stage is skipped, and says so.
"""
from __future__ import annotations

import bisect
import json
import random
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from . import prompt_format
from .protocol import RELEASED, ProtocolProfile
from .seed import IMAGE_PLACEHOLDER, SeedRecord

BLANK_SIZE = (448, 448)
FOLDER_FILES = {"captions": "captions.json", "precise": "precise.json", "informative": "informative.json",
                "image_root": "images"}
MANIFEST = "tune.yaml"
#: The tune.yaml ratios and their defaults (the paper's blank ratio; no mismatched images; no dev split).
RATIOS = {"blank_ratio": 0.1, "mismatch_ratio": 0.0, "dev_ratio": 0.0}
SKIP_MESSAGE = "no seed data (data.tune); using the synthesizer model as given"


class TuningSet(NamedTuple):
    train: list[dict]
    dev: list[dict]
    blanked: list[str]  # ids of the conversations whose image is the blank one
    mismatched: list[str]  # ids of the conversations shown another record's image


def write_blank_image(path: str | Path, size: tuple[int, int] = BLANK_SIZE) -> Path:
    """A plain white RGB PNG at ``path`` (left as is when it is already there)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.png")
        Image.new("RGB", size, (255, 255, 255)).save(tmp, format="PNG")
        tmp.replace(path)
    return path


def _default_blank() -> Path:
    import os

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "adamllm"
    return write_blank_image(cache / f"blank-{BLANK_SIZE[0]}x{BLANK_SIZE[1]}.png")


def _draw(n: int, ratio: float, rng: random.Random, among: Sequence[int] | None = None) -> set[int]:
    """An exact ``round(ratio * n)`` of the ``n`` indices (or of ``among``, a part of them), seeded."""
    if not 0 <= ratio <= 1:
        raise ValueError(f"a ratio must lie in [0, 1], got {ratio}")
    population = range(n) if among is None else among
    count = round(ratio * n)
    if count > len(population):
        raise ValueError(f"{count} of {n} wanted, {len(population)} left to draw from: the ratios must add up "
                         f"to at most 1")
    return set(rng.sample(population, count)) if n else set()


def conversation(record: SeedRecord, profile: ProtocolProfile, rng: random.Random) -> list[dict]:
    """The messages of one seed record: the describe exchange, then its task turns shuffled."""
    turns = [("precise", p) for p in record.precise] + [("informative", p) for p in record.informative]
    rng.shuffle(turns)
    messages = [{"role": "user", "content": IMAGE_PLACEHOLDER + profile.describe},
                {"role": "assistant", "content": record.caption}]
    for kind, pair in turns:
        messages += [{"role": "user", "content": profile.ask(kind, pair.instruction)},
                     {"role": "assistant", "content": pair.answer}]
    return messages


def tuning_conversations(seeds: Sequence[SeedRecord], profile: ProtocolProfile = RELEASED, *, seed: int,
                         blank_ratio: float = 0.1, blank_image: str | Path | None = None,
                         dev_ratio: float = 0.0, mismatch_ratio: float = 0.0) -> TuningSet:
    """ShareGPT records ``{"id", "messages", "images"}`` for tuning a synthesizer (module docstring).

    ``blank_image``: the blank image's path as written in the records; None: a plain white PNG
    generated once in ``~/.cache/adamllm``. Returns ``TuningSet(train, dev, blanked)``.
    """
    seeds = list(seeds)
    n = len(seeds)
    blank = _draw(n, blank_ratio, random.Random(f"adamllm-tune-blank:{seed}"))
    if blank and blank_image is None:
        blank_image = _default_blank()
    mismatch = _mismatches(seeds, blank, mismatch_ratio, random.Random(f"adamllm-tune-mismatch:{seed}"))
    dev = _draw(n, dev_ratio, random.Random(f"adamllm-tune-dev:{seed}"))
    train_records, dev_records, blanked, mismatched = [], [], [], []
    for index, record in enumerate(seeds):
        rng = random.Random(f"adamllm-tune-order:{seed}:{record.id}")
        image = str(blank_image) if index in blank else mismatch.get(index, record.image)
        if index in blank:
            blanked.append(record.id)
        elif index in mismatch:
            mismatched.append(record.id)
        out = {"id": record.id, "messages": conversation(record, profile, rng), "images": [image]}
        (dev_records if index in dev else train_records).append(out)
    return TuningSet(train_records, dev_records, blanked, mismatched)


def _mismatches(seeds: Sequence[SeedRecord], blank: set[int], ratio: float, rng: random.Random) -> dict[int, str]:
    """``{index: another record's image}`` for ``round(ratio * n)`` records outside ``blank``."""
    chosen = _draw(len(seeds), ratio, rng, among=sorted(set(range(len(seeds))) - blank))
    images = sorted({s.image for s in seeds})
    if len(images) < 2:  # no other image to show
        return {}
    out = {}
    for index in sorted(chosen):  # uniform among the other images: skip over the record's own
        k = rng.randrange(len(images) - 1)
        out[index] = images[k + (k >= bisect.bisect_left(images, seeds[index].image))]
    return out


def write_jsonl(records: Sequence[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


# -- the tune stage ---------------------------------------------------------------------------
def seed_layout(folder: str | Path, image_root: str | Path | None = None) -> dict[str, Any]:
    """The seed files of a ``data.tune`` folder (its ``tune.yaml`` if any, else the default names),
    as absolute paths inside the folder, with its ratios (``RATIOS``); ``image_root``
    (``data.tune.images``), when given, replaces the folder's image root and may lie outside it."""
    import yaml

    from adamllm.io import DataError, resolve_under

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data.tune must be a folder holding {', '.join(FOLDER_FILES.values())} "
                        f"(or a {MANIFEST} naming the seed files); got {folder}")
    options: dict[str, Any] = {}
    manifest = folder / MANIFEST
    if manifest.is_file():
        loaded = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise DataError(f"{manifest}: expected a mapping")
        unknown = sorted(set(loaded) - set(FOLDER_FILES) - set(RATIOS))
        if unknown:
            raise DataError(f"{manifest}: unknown key(s) {', '.join(unknown)}; keys: "
                            f"{', '.join([*FOLDER_FILES, *RATIOS])}")
        options = loaded
    layout: dict[str, Any] = {}
    for key, default in FOLDER_FILES.items():
        if key == "image_root" and image_root is not None:
            if not Path(image_root).is_dir():
                raise DataError(f"data.tune.images: no such folder: {image_root}")
            layout[key] = Path(image_root).resolve()
            continue
        path = resolve_under(folder, str(options.get(key, default)))
        if not path.exists():
            raise DataError(f"{folder}: no {key} {'folder' if key == 'image_root' else 'file'} "
                            f"{path.relative_to(folder.resolve())}")
        layout[key] = path
    for key, default in RATIOS.items():
        value = options.get(key, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
            raise DataError(f"{manifest}: {key} must be a number in [0, 1], got {value!r}")
        layout[key] = float(value)
    if layout["blank_ratio"] + layout["mismatch_ratio"] > 1:
        raise DataError(f"{manifest}: blank_ratio + mismatch_ratio must be at most 1, got "
                        f"{layout['blank_ratio']} + {layout['mismatch_ratio']}")
    return layout


def _trainer(ctx):
    """The trainer section's trainer (default: sft) with the synthesizer section's ``tuning``
    options over its own, and ``label_policy: after_first_turn``."""
    from pydantic import ValidationError

    from adamllm.stages import StageError

    selection = ctx.config.trainer
    name = selection.type if selection is not None else "sft"
    spec = ctx.plugins.spec("trainer", name)
    options = selection.options if selection is not None else None
    model = spec.load_config_model()
    if options is None:
        options = model() if model is not None else None
    tuning = dict(getattr(getattr(ctx.config.synthesizer, "options", None), "tuning", None) or {})
    if tuning and options is not None:
        try:  # validated again as a whole, so a bad value names synthesizer.tuning.<field>
            options = type(options).model_validate({**options.model_dump(exclude_unset=True), **tuning})
        except ValidationError as exc:
            problems = "; ".join(f"synthesizer.tuning.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                 for e in exc.errors())
            raise StageError(f"stage 'tune': invalid trainer options: {problems}") from None
    if options is None or not hasattr(options, "label_policy"):
        raise StageError(f"stage 'tune' needs a trainer with a label_policy option (sft); {name!r} has none")
    if options.label_policy != "after_first_turn":
        ctx.echo(f"[tune] training under label_policy after_first_turn (the trainer section says "
                 f"{options.label_policy!r}, which applies to the train stage)")
    update = {"label_policy": "after_first_turn"}
    if getattr(options, "two_stage", False) and "two_stage" not in tuning:
        # the trainer section's two-stage schedule is the target model's: the seed conversations
        # carry no stages, and the synthesizer is tuned on them in one
        ctx.echo("[tune] training in one stage (the trainer section's two_stage applies to the train stage)")
        update["two_stage"] = False
    options = options.model_copy(update=update)
    trainer = spec.build(options)
    if not hasattr(trainer, "train"):
        raise StageError(f"trainer {name!r} has no train(adapter, records, out_dir, ...) method")
    return trainer, name


def run_tune_stage(ctx) -> dict:
    """Build the seed conversations from ``data.tune`` and train the synthesizer's model on them."""
    from adamllm.backbone import ModelSlot
    from adamllm.stages import StageError

    source = ctx.config.data.get("tune")
    if not source:
        ctx.echo(f"[tune] {SKIP_MESSAGE}")
        return {"skipped": SKIP_MESSAGE}
    synthesizer = ctx.config.synthesizer
    slot = getattr(getattr(synthesizer, "options", None), "model", None)
    if not isinstance(slot, ModelSlot):
        raise StageError("stage 'tune' trains the synthesizer's model: it needs a 'synthesizer' section with a "
                         "model slot (synthesizer: {type: adamllm, model: {type: llava_next, model: ...}})")
    from .seed import read_seeds

    given = ctx.data_input("tune")
    layout = seed_layout(source, given.images if given is not None else None)
    out = ctx.stage_dir
    profile = getattr(synthesizer.options, "profile", None)
    if isinstance(profile, str):
        from .protocol import PROFILES

        if profile not in PROFILES:
            raise StageError(f"unknown protocol profile {profile!r}; profiles: {', '.join(PROFILES)}")
        profile = PROFILES[profile]
    profile = profile if isinstance(profile, ProtocolProfile) else RELEASED
    quarantine = ctx.quarantine()
    with quarantine:
        seeds = read_seeds(layout["captions"], layout["precise"], layout["informative"], layout["image_root"],
                           quarantine=quarantine)
        if not seeds.records:
            raise StageError(f"stage 'tune': no usable seed image in {source} (an image needs a caption, a "
                             f"precise and an informative pair): {seeds.stats}")
        if seeds.stats.get("images_by_base_name"):
            ctx.echo(f"[tune] {seeds.stats['images_by_base_name']} seed images found by base name under "
                     f"{layout['image_root']} (their paths as written are not there: a flat image folder)")
        tuning = tuning_conversations(seeds.records, profile, seed=ctx.config.seed,
                                      blank_ratio=layout["blank_ratio"],
                                      blank_image=write_blank_image(out / "blank.png").resolve(),
                                      dev_ratio=layout["dev_ratio"], mismatch_ratio=layout["mismatch_ratio"])
        write_jsonl(tuning.train, out / "seed_conversations.jsonl")
        if tuning.dev:
            write_jsonl(tuning.dev, out / "seed_dev.jsonl")
        another = f"{len(tuning.mismatched)} with another seed image, " if tuning.mismatched else ""
        ctx.echo(f"[tune] {len(tuning.train)} seed conversations ({len(tuning.blanked)} with a blank image, "
                 f"{another}{len(tuning.dev)} held out) from {seeds.stats['seed_images']} of "
                 f"{seeds.stats['captioned_images']} captioned images")
        trainer, trainer_name = _trainer(ctx)
        trainer_config = getattr(trainer, "config", None)
        seed = getattr(trainer_config, "seed", None)
        limit = getattr(trainer_config, "limit", None)
        records = [{**r, "_where": f"{out / 'seed_conversations.jsonl'}:{i + 1}"}
                   for i, r in enumerate(tuning.train[:limit] if limit else tuning.train)]
        adapter = ctx.build_model(slot)
        fmt, why = prompt_format.choose(getattr(synthesizer.options, "prompt_format", "auto"), adapter)
        prompt_format.apply(fmt, adapter)  # the tuned model is saved with the template it was tuned in
        ctx.echo(f"[tune] conversations in prompt format {fmt.name}: {why}")
        # image paths are absolute: the seed images were confined to their root when read
        summary = trainer.train(adapter, records, out, image_root=None,
                                seed=seed if seed is not None else ctx.config.seed, resume=not ctx.force,
                                backbone=slot.type, quarantine=quarantine)
    model_dir = out / "model"
    return {**(summary or {}), "seeds": seeds.stats, "conversations": len(tuning.train),
            "blank_images": len(tuning.blanked), "mismatched_images": len(tuning.mismatched), "dev_conversations": len(tuning.dev), "trainer": trainer_name,
            "prompt_format": fmt.name,
            "model_dir": str(model_dir) if model_dir.is_dir() else None}
