"""Turning training records into things people read: a rich table and a PNG of the curves."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.table import Table

from fnnkit.train import TrainRecord

# The tutorial's published test accuracy (%) on full MNIST after 3000 iterations of its recipe.
PUBLISHED_ACCURACY = {"A": 91.0, "B": 95.0, "C": 95.0, "D": 96.0, "E": 97.0}
PUBLISHED_DATASET = "mnist"


def published_accuracy(record: TrainRecord) -> float | None:
    """The tutorial's number for this run, if it is comparable: full MNIST, the tutorial's recipe."""
    from fnnkit.train import TrainConfig

    default = TrainConfig()
    same_recipe = (record.config.iterations, record.config.batch_size, record.config.learning_rate) == (
        default.iterations,
        default.batch_size,
        default.learning_rate,
    )
    full = record.dataset.name == PUBLISHED_DATASET and record.dataset.train_size == 60_000
    return PUBLISHED_ACCURACY.get(record.spec.name) if same_recipe and full else None


def training_table(records: Sequence[TrainRecord]) -> Table:
    datasets = sorted(
        {f"{r.dataset.name} ({r.dataset.train_size:,} train / {r.dataset.test_size:,} test)" for r in records}
    )
    devices = ", ".join(sorted({r.device for r in records}))
    # no vertical rules: the table (and its "diff" column) fits an 80-column terminal
    title = f"Training results, test accuracy %: {', '.join(datasets)} on {devices}"
    table = Table(title=title, title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    # "paper": the tutorial's published accuracy, shown only for a comparable run (full MNIST, its recipe)
    columns = ("variant", "network", "final", "paper", "diff", "best", "wall s", "samples/s")
    for column in columns:
        table.add_column(column, justify="left" if column in ("variant", "network") else "right", no_wrap=True)
    best = max(r.test_accuracy for r in records) if records else None
    for r in records:
        final = f"{r.test_accuracy:.2f}"
        published = published_accuracy(r)
        table.add_row(
            r.spec.name,
            f"{r.spec.hidden_layers}x{r.spec.hidden_dim} {r.spec.activation}",
            f"[bold green]{final}[/]" if r.test_accuracy == best else final,
            "-" if published is None else f"{published:.0f}",
            "-" if published is None else f"{r.test_accuracy - published:+.2f}",
            f"{r.best_test_accuracy:.2f}",
            f"{r.train_seconds:.1f}",
            f"{r.samples_per_second:,.0f}",
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
