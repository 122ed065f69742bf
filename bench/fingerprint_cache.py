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

    python bench/fingerprint_cache.py [--records 500000] [--distinct N] [--dir DIR] [--keep] [--reuse]

It also prints the floor: a bare ``os.stat`` of every image, measured in the same run. The warm
check is one stat per image plus little else, so it tracks that floor (8 to 15 µs per stat on the
project's 2-core VM while other jobs share it).
"""
from __future__ import annotations

import argparse
import io
import json
import os
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


from adamllm.content import CACHE_NAME  # noqa: E402


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


def stat_floor(root: Path) -> float:
    """Seconds for a bare ``os.stat`` of every image the mix names (the least a check of sizes
    and times can cost on this machine, at its current load)."""
    from adamllm.content import record_images

    paths = [path for _, path in record_images(root / "mix.jsonl", root)]
    start = time.perf_counter()
    for path in paths:
        os.stat(path)
    return time.perf_counter() - start


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
    parser.add_argument("--reuse", action="store_true", help="use the mix and images already in --dir "
                                                              "(its content cache removed: a cold start)")
    args = parser.parse_args()
    distinct = min(args.distinct or args.records, args.records)
    root = args.dir or Path(tempfile.mkdtemp(prefix="adamllm-fingerprint-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        if args.reuse and (root / "mix.jsonl").is_file():
            (root / "out" / CACHE_NAME).unlink(missing_ok=True)
            print(f"reusing {root / 'mix.jsonl'}")
        else:
            start = time.perf_counter()
            write_mix(root, args.records, distinct)
            print(f"wrote {args.records:,} records naming {distinct:,} distinct images in "
                  f"{time.perf_counter() - start:.1f} s under {root}")
        time.sleep(2.1)  # files hashed within 2 s of being written are hashed again next time, by design
        cold, first, hashed_cold = timed(root)
        print(f"cold   {cold:7.2f} s  ({hashed_cold:,} files hashed)", flush=True)
        warm, second, hashed_warm = timed(root)
        assert first["inputs"] == second["inputs"], "an unchanged rerun must give the same fingerprint"
        print(f"warm   {warm:7.2f} s  ({hashed_warm:,} files hashed; acceptance: < 5 s)  cold/warm {cold / warm:.1f}x",
              flush=True)
        floor = stat_floor(root)
        print(f"floor  {floor:7.2f} s  (a bare os.stat of every image, measured now: what any size/mtime check costs)",
              flush=True)
        (root / "images" / "0000" / "7.png").write_bytes(tiny_png() + str(time.time_ns()).encode())  # new content
        changed, third, hashed_changed = timed(root)
        key = next(k for k in third["inputs"] if k.startswith("images named by"))
        assert third["inputs"][key] != first["inputs"][key], "a replaced image must change the fingerprint"
        print(f"one image replaced {changed:7.2f} s  ({hashed_changed:,} hashed; named: {third.get('changed_files')})")
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
