"""Projects for the tests of spreading a run over processes (torchrun, ``--executor ray``): the
same config run by one process and by several must write the same files, byte for byte."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

#: What the synthesize and filter stages write (compared byte for byte).
DATA_FILES = ("synthesize/triplets.jsonl", "synthesize/_progress.jsonl", "synthesize/rejected.jsonl",
              "filter/verdicts.jsonl")
#: What the evaluate stage writes for the ``vqa`` benchmark of ``evaluate_project``.
EVALUATE_FILES = ("evaluate/vqa/predictions.jsonl", "evaluate/vqa/rejected.jsonl")


def components_env(site: Path) -> dict:
    """The environment of a subprocess (``adamllm run`` under one process, torchrun or Ray) that
    finds ``adamllm.testing.components`` through an entry point, as pip would install it: a
    ``fake_distribution`` written into ``site``, put on ``PYTHONPATH``; offline, one thread."""
    from .distributions import fake_distribution

    fake_distribution(site, "adamllm-testing-components",
                      entry_points={"adamllm-testing-components": "adamllm.testing.components:PLUGIN"})
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def data_project(root: Path, n: int = 11, synthesizer: str = "{type: rules}",
                 filter: str = "{type: testing_overlap, batch_size: 2}") -> Path:
    """``n`` pairs, one with a broken image and one repeated (each set aside once, whichever process
    meets it), and ``run.yaml`` synthesizing and filtering them (the ``testing_*`` components need
    ``adamllm.testing.components`` registered, e.g. through a ``fake_distribution`` site)."""
    from .data import write_pairs

    pairs = write_pairs(root / "pairs", n=n)
    records = json.loads(pairs.read_text())
    (root / "pairs" / "images" / "pair4.png").write_bytes(b"not a png")  # quarantined by its owner
    records.append(records[2])  # a repeated pair
    pairs.write_text(json.dumps(records, indent=2))
    config = root / "run.yaml"
    config.write_text("output_dir: out\nstages: [synthesize, filter]\n"
                      "data: {synthesize: pairs/image_caption_pairs.json}\n"
                      f"synthesizer: {synthesizer}\nfilter: {filter}\n")
    return config


def evaluate_project(root: Path, quickstart_benchmark: Path, model: Path) -> Path:
    """Nine questions of the quickstart's benchmark plus one whose image is missing (set aside once),
    and ``evaluate.yaml`` evaluating the Qwen2-VL checkpoint ``model`` on them one sample per batch
    (so a process's share does not change what the model answers)."""
    bench = root / "bench"
    shutil.copytree(quickstart_benchmark, bench)
    lines = (bench / "test.jsonl").read_text().splitlines()
    broken = json.loads(lines[4])
    broken.update(id="broken", image="images/missing.png")
    (bench / "test.jsonl").write_text("\n".join(lines[:9] + [json.dumps(broken)]) + "\n")
    config = root / "evaluate.yaml"
    config.write_text(f"output_dir: out\nstages: [evaluate]\nbackbone: {{type: qwen2_vl, model: {model}}}\n"
                      "benchmarks:\n  - {type: vqa, source: bench, max_new_tokens: 4, batch_size: 1}\n")
    return config


def read_files(out: Path, names) -> dict:
    """``{name: bytes}`` of the files a run wrote (a missing one as None)."""
    return {name: (out / name).read_bytes() if (out / name).exists() else None for name in names}
