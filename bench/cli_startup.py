"""Wall time of `adamllm plugins list` against a bare `python -c pass`, measured in the same run.

Listing plugins must stay instant (goal: under 0.5 s on a 2-core machine) because discovering
plugins imports no torch/transformers. Prints the median of N runs of each and their ratio.
"""
import statistics
import subprocess
import sys
import time

N = 7


def median_wall(argv: list[str]) -> float:
    times = []
    for _ in range(N):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    baseline = median_wall([sys.executable, "-c", "pass"])
    listing = median_wall([sys.executable, "-m", "adamllm.cli", "plugins", "list"])
    torch_import = median_wall([sys.executable, "-c", "import torch"])
    print(f"python -c pass            {baseline:.3f} s")
    print(f"adamllm plugins list      {listing:.3f} s  ({listing / baseline:.1f}x bare python; goal < 0.5 s)")
    print(f"python -c 'import torch'  {torch_import:.3f} s  (what listing would cost if it imported torch)")


if __name__ == "__main__":
    main()
