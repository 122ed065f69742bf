"""A small real run directory for the data card: ``adamllm run`` (synthesize, filter, compose) on ten
fixture pairs with drawn PNG images, through components installed by entry point as pip would.

The pairs, by index (their fate is what the card must count):

- 0-6: a triplet each (``testing_echo``: precise = the caption's first word); the judge
  (``inspect_colour`` below) says ``no`` for red, ``open`` for blue, ``other`` for green, else ``yes``:
  0 red -> no, 1 blue -> open, 2 green -> other, 3-5 yes, 6 (a caption holding a ``<script>``) yes;
- 7: a black shape: no triplet (``no_triplet_if: black``);
- 8: its image file is missing: quarantined while reading (missing_image), by synthesize and compose;
- 9: its image is not an image: quarantined by synthesize (bad_image); compose drops it (no triplet).

The benchmark folder (``vqa``, the public layout) holds a resized JPEG copy of pair 3's image, a
byte copy of pair 4's, and two images of its own.
"""
import json
import os
import random
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from adamllm.testing.distributions import fake_distribution

JUDGE = '''
from adamllm import hookimpl
from adamllm.records import Verdict
from adamllm.specs import FilterSpec

LABELS = {"red": "no", "blue": "open", "green": "other"}


class ColourJudge:
    batch_size = 4

    def judge(self, triplets, ctx):
        out = []
        for t in triplets:
            label = next((v for k, v in LABELS.items() if k in t.informative.split()), "yes")
            out.append(Verdict(id=t.id, verdict=label, raw=f"judge: {label}"))
        return out


@hookimpl
def adamllm_filters():
    return [FilterSpec(name="inspect_colour", factory=ColourJudge, description="test: verdict by colour word")]
'''

SCRIPT_CAPTION = '<script>alert("x")</script> & a white triangle on a grid.'
CAPTIONS = [
    "A red circle on a striped card.",
    "A blue square beside two dots.",
    "A green star over a wavy line.",
    "A yellow triangle in a corner.",
    "A purple ring with a thick border and a small cross in the middle.",
    "An orange hexagon.",
    SCRIPT_CAPTION,
    "A black square on grey paper.",
    "A pink oval that is missing.",
    "A brown arrow that does not decode.",
]
CONFIG = """\
output_dir: out
stages: [synthesize, filter, compose]
data: {synthesize: pairs/pairs.jsonl}
synthesizer: {type: testing_echo, no_triplet_if: black}
filter: {type: inspect_colour}
composer: {type: testing_caption_task}
"""


def pattern(seed: int, size: int = 96):
    """A drawn image whose perceptual hash is far (24+ bits) from the other seeds'."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.randrange(size), rng.randrange(size)
        box = [x0, y0, x0 + rng.randrange(10, size // 2), y0 + rng.randrange(10, size // 2)]
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=tuple(rng.randrange(256) for _ in range(3)))
    return image


def write_pairs(folder: Path) -> Path:
    (folder / "images").mkdir(parents=True)
    lines = []
    for i, caption in enumerate(CAPTIONS):
        name = f"images/p{i}.png"
        if i == 9:
            (folder / name).write_bytes(b"these bytes are not a PNG")
        elif i != 8:
            pattern(i).save(folder / name)
        lines.append(json.dumps({"id": f"p{i}", "images": [name], "messages": [
            {"role": "user", "content": "<image>Describe the image."},
            {"role": "assistant", "content": caption}]}))
    path = folder / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_benchmark(folder: Path, pairs: Path) -> Path:
    images = folder / "images"
    images.mkdir(parents=True)
    from PIL import Image

    Image.open(pairs.parent / "images/p3.png").resize((48, 48)).save(images / "copy_small.jpg", quality=70)
    shutil.copyfile(pairs.parent / "images/p4.png", images / "exact.png")
    pattern(101).save(images / "own1.png")
    pattern(102).save(images / "own2.png")
    rows = [("copy_small.jpg", "What shape is it?", "triangle", "OPEN"),
            ("exact.png", "Is there a cross?", "yes", "CLOSED"),
            ("own1.png", "What colour is the background?", "teal", "OPEN"),
            ("own2.png", "Is it round?", "no", "CLOSED"),
            ("own2.png", "How many shapes?", "six", "OPEN")]
    (folder / "test.jsonl").write_text("".join(json.dumps({"id": f"b{i}", "image": f"images/{img}", "input": q,
                                                           "label": a, "answer_type": t}) + "\n"
                                               for i, (img, q, a, t) in enumerate(rows)))
    return folder


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    fake_distribution(site, "adamllm-testing-components",
                      entry_points={"adamllm-testing-components": "adamllm.testing.components:PLUGIN"})
    fake_distribution(site, "adamllm-inspect-judge", modules={"adamllm_inspect_judge": JUDGE},
                      entry_points={"adamllm-inspect-judge": "adamllm_inspect_judge"})
    return site


def adamllm_run(site: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "ADAMLLM_STRICT_PLUGINS": "1"}
    result = subprocess.run([sys.executable, "-m", "adamllm.cli", "run", str(config), *args], capture_output=True,
                            text=True, env=env, timeout=300, cwd=config.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def make_run(site: Path, folder: Path, config: str = CONFIG, benchmarks: str = "") -> Path:
    """A project folder with pairs, a benchmark folder and run.yaml, after ``adamllm run``."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = write_pairs(folder / "pairs")
    write_benchmark(folder / "bench", pairs)
    (folder / "run.yaml").write_text(config + benchmarks)
    adamllm_run(site, folder / "run.yaml")
    return folder


@pytest.fixture(scope="session")
def project(site, tmp_path_factory) -> Path:
    """The full run (its config names the ``vqa`` benchmark on ``bench/``, never evaluated)."""
    return make_run(site, tmp_path_factory.mktemp("project"), benchmarks="benchmarks: [{type: vqa, source: bench}]\n")


class Page(HTMLParser):
    """The parts of a card a reader sees: text, table rows, tags and their attributes."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.rows: list[tuple[str, list[str]]] = []  # (the table's id, the row's cells)
        self._table = ""
        self.tags: list[tuple[str, dict]] = []
        self.ids: dict[str, int] = {}
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self.feed(source)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids[attrs["id"]] = len(self.texts)
        if tag == "table":
            self._table = attrs.get("id", "")
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append((self._table, self._row))
            self._row = None

    def handle_data(self, data):
        self.texts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def row(self, table: str, *key: str) -> list[str]:
        """The row of table ``table`` (its id) whose first cells are ``key``."""
        found = [r for t, r in self.rows if t == table and r[: len(key)] == list(key)]
        assert len(found) == 1, (key, found)
        return found[0]

    def text_of(self, element_id: str) -> str:
        """The text after the element with this id, up to the next element with an id."""
        start = self.ids[element_id]
        after = sorted(i for i in self.ids.values() if i > start)
        return "".join(self.texts[start: after[0] if after else None])



@pytest.fixture(scope="session")
def kit():
    """This folder's helpers for its test modules (pytest's importlib mode imports no conftest by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(captions=CAPTIONS, script_caption=SCRIPT_CAPTION, config=CONFIG, Page=Page,
                           make_run=make_run, pattern=pattern)
