"""Turning training records into things people read: a rich table and a PNG of the curves."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from fnnkit.train import TrainRecord


def training_table(records: Sequence[TrainRecord]) -> Table:
    datasets = sorted(
        {f"{r.dataset.name} ({r.dataset.train_size:,} train / {r.dataset.test_size:,} test)" for r in records}
    )
    table = Table(title=f"Training results: {', '.join(datasets)}", title_style="bold")
    for column in ("variant", "network", "params", "final %", "best %", "wall s", "samples/s", "device"):
        table.add_column(
            column, justify="left" if column in ("variant", "network", "device") else "right", no_wrap=True
        )
    best = max(r.test_accuracy for r in records) if records else None
    for r in records:
        final = f"{r.test_accuracy:.2f}"
        table.add_row(
            r.spec.name,
            f"{r.spec.hidden_layers}x{r.spec.hidden_dim} {r.spec.activation}",
            f"{r.spec.num_parameters:,}",
            f"[bold green]{final}[/]" if r.test_accuracy == best else final,
            f"{r.best_test_accuracy:.2f}",
            f"{r.train_seconds:.1f}",
            f"{r.samples_per_second:,.0f}",
            r.device,
        )
    return table


def plot_training_curves(records: Sequence[TrainRecord], path: str | os.PathLike) -> Path:
    """Loss and test accuracy against iteration, every variant on one figure (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    from fnnkit.store import atomic_write

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for r in records:
        iterations = [p.iteration for p in r.history]
        label = f"{r.spec.name}: {r.spec.description}"
        loss_ax.plot(iterations, [p.train_loss for p in r.history], marker="o", label=label)
        acc_ax.plot(iterations, [p.test_accuracy for p in r.history], marker="o", label=label)
    dataset = records[0].dataset.name if records else ""
    loss_ax.set(title=f"Training loss ({dataset})", xlabel="iteration", ylabel="mean cross-entropy since last eval")
    acc_ax.set(title=f"Test accuracy ({dataset})", xlabel="iteration", ylabel="top-1 accuracy (%)")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
    acc_ax.legend(loc="lower right", fontsize="small")
    path = Path(path)
    try:
        atomic_write(path, lambda temp: fig.savefig(temp, format="png", dpi=110))
    finally:
        plt.close(fig)
    return path
