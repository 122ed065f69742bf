"""Time of the train stage's fingerprint on a large mix: cold (every image hashed), warm (an
unchanged rerun, hashes reused from the content cache) and after one image is replaced.

Issue 21's acceptance: on an unchanged rerun, the fingerprint check of a 500K-record mix costs
under 5 s on the project's 2-core machine. The mix has ``--records`` records (default 500,000),
each naming one image; ``--distinct`` images (default: as many as records, real distinct files,
1,000 per sub-folder), each a 2x2 PNG followed by its index so every file has its own hash;
with fewer, records cycle through them. It computes the fingerprint exactly as ``adamllm run``
does (``stage_fingerprint`` with the run's ``ContentCache`` and the mix's named images) and
prints the three times and the cold/warm ratio. The data are written under ``--dir`` (default:
a temporary folder, removed at the end unless ``--keep``); writing 500K files takes a minute or two.

    python bench/fingerprint_cache.py [--records 500000] [--distinct N] [--dir DIR] [--keep]
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
import time
from pathlib import Path


def tiny_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def write_mix(root: Path, records: int, distinct: int) -> Path:
    png = tiny_png()
    names = []
    for i in range(distinct):
        name = f"images/{i // 1000:04d}/{i}.png"
        if i % 1000 == 0:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(png + str(i).encode())
        names.append(name)
    mix = root / "mix.jsonl"
    with mix.open("w", encoding="utf-8") as handle:
        for i in range(records):
            handle.write(json.dumps({"id": f"ex{i}", "images": [names[i % distinct]], "messages": [
                {"role": "user", "content": "<image>Describe the image."},
                {"role": "assistant", "content": f"Picture {i}."}]}) + "\n")
    return mix


def fingerprint(root: Path):
    """The train stage's fingerprint as ``adamllm run`` computes it; returns it and the cache's
    count of files hashed."""
    from adamllm.config import validate_config
    from adamllm.content import cache_for
    from adamllm.fingerprint import stage_fingerprint
    from adamllm.registry import PluginManager
    from adamllm.runner import StageContext
    from adamllm.stages import stage

    pm = PluginManager(no_plugins=True)
    config = validate_config({"output_dir": "out", "stages": ["train"],
                              "backbone": {"type": "qwen2_vl", "model": "base", "tiny": "tiny"},
                              "trainer": {"type": "sft"}, "data": {"train": "mix.jsonl"}},
                             pm, source=root / "run.yaml", base_dir=root)
    ctx = StageContext("train", config, pm)
    with cache_for(config.output_dir) as cache:
        found = stage_fingerprint(config, stage("train"), ctx.input_paths(), cache, ctx.named_files())
        return found, cache.hashed


def timed(root: Path):
    start = time.perf_counter()
    found, hashed = fingerprint(root)
    return time.perf_counter() - start, found, hashed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--distinct", type=int, default=None, help="distinct image files (default: --records)")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    distinct = min(args.distinct or args.records, args.records)
    root = args.dir or Path(tempfile.mkdtemp(prefix="adamllm-fingerprint-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        write_mix(root, args.records, distinct)
        print(f"wrote {args.records:,} records naming {distinct:,} distinct images in "
              f"{time.perf_counter() - start:.1f} s under {root}")
        time.sleep(2.1)  # files hashed within 2 s of being written are hashed again next time, by design
        cold, first, hashed_cold = timed(root)
        warm, second, hashed_warm = timed(root)
        assert first["inputs"] == second["inputs"], "an unchanged rerun must give the same fingerprint"
        (root / "images" / "0000" / "7.png").write_bytes(tiny_png() + b"replaced")
        changed, third, hashed_changed = timed(root)
        key = next(k for k in third["inputs"] if k.startswith("images named by"))
        assert third["inputs"][key] != first["inputs"][key], "a replaced image must change the fingerprint"
        print(f"cold   {cold:7.2f} s  ({hashed_cold:,} files hashed)")
        print(f"warm   {warm:7.2f} s  ({hashed_warm:,} files hashed; acceptance: < 5 s)  cold/warm {cold / warm:.1f}x")
        print(f"one image replaced {changed:7.2f} s  ({hashed_changed:,} hashed; named: {third.get('changed_files')})")
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
