"""Benchmark files for people and spreadsheets: CSV of every row, and a PNG of speed and latency."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict, fields
from pathlib import Path

from fnnkit.bench.results import BenchRow, BenchRun

CSV_FIELDS = [f.name for f in fields(BenchRow) if f.name != "distribution_us"]


def write_csv(run: BenchRun, path: str | os.PathLike) -> Path:
    """One line per row, every scalar field, written atomically."""
    from fnnkit.store import atomic_write_bytes

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["run_id", *CSV_FIELDS], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in run.rows:
        writer.writerow({"run_id": run.run_id, **asdict(row)})
    return atomic_write_bytes(path, buffer.getvalue().encode())


def write_plot(run: BenchRun, path: str | os.PathLike) -> Path:
    """Per variant: throughput against batch size (log-log), and the smallest batch's latency distribution."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    from fnnkit.store import atomic_write

    variants = list(dict.fromkeys(r.variant for r in run.rows)) or ["-"]
    fig, axes = plt.subplots(
        2, len(variants), figsize=(max(6.5, 4.2 * len(variants)), 7.5), squeeze=False, constrained_layout=True
    )
    for column, variant in enumerate(variants):
        rows = [r for r in run.rows if r.variant == variant]
        _throughput(axes[0][column], rows, variant)
        _latency(axes[1][column], rows, variant)
    fig.suptitle(
        f"fnnkit bench {run.run_id}\n{run.environment.get('cpu', '')}; threads {run.threads.get('policy', '')}",
        fontsize="small",
    )
    path = Path(path)
    try:
        atomic_write(path, lambda temp: fig.savefig(temp, format="png", dpi=100))
    finally:
        plt.close(fig)
    return path


def _series(rows: list[BenchRow]) -> dict[str, list[BenchRow]]:
    out: dict[str, list[BenchRow]] = {}
    for row in rows:
        out.setdefault(f"{row.backend} ({row.device})", []).append(row)
    return {label: sorted(group, key=lambda r: r.batch_size) for label, group in out.items()}


def _throughput(ax, rows: list[BenchRow], variant: str) -> None:
    for label, group in _series(rows).items():
        ax.plot([r.batch_size for r in group], [r.throughput for r in group], marker="o", label=label)
    ax.set(xscale="log", yscale="log", title=f"{variant}: throughput", xlabel="batch size", ylabel="samples/s")
    ax.grid(alpha=0.3, which="both")
    if rows:
        ax.legend(fontsize="x-small")


def _latency(ax, rows: list[BenchRow], variant: str) -> None:
    """Box = p25..p75, line = median, whiskers = p1..p99: from each row's recorded percentiles."""
    smallest = min((r.batch_size for r in rows), default=1)
    chosen = [r for r in rows if r.batch_size == smallest and r.distribution_us]
    stats = [
        {"label": f"{r.backend}\n{r.device}", "med": r.distribution_us["p50"], "q1": r.distribution_us["p25"],
         "q3": r.distribution_us["p75"], "whislo": r.distribution_us["p1"], "whishi": r.distribution_us["p99"],
         "fliers": []}
        for r in chosen
    ]  # fmt: skip
    if stats:
        ax.bxp(stats, showfliers=False)
        ax.tick_params(axis="x", labelsize="x-small", rotation=45)
    ax.set(yscale="log", title=f"{variant}: latency at batch {smallest} (p1-p99)", ylabel="µs per call")
    ax.grid(alpha=0.3, axis="y", which="both")
