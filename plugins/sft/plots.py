"""The loss curve a training run saves next to its model (``loss_curve.png``)."""
from __future__ import annotations

from pathlib import Path


def plot_loss_curve(losses: list[list[float]], path: Path) -> None:
    if not losses:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot([s for s, _, _ in losses], [loss for _, loss, _ in losses], linewidth=1.2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title("adamllm sft: training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
