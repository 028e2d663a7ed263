"""Every figure fnnkit draws: training curves, bench speed and latency, scenario latency vs load, tune frontiers.

matplotlib is imported inside ``_pyplot`` only, so `fnnkit --help` never pays for it; each PNG
is written atomically through the store.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fnnkit.store import atomic_write

if TYPE_CHECKING:  # types only: importing them would load torch, and `fnnkit --help` must stay fast
    from fnnkit.bench.results import BenchRow, BenchRun
    from fnnkit.bench.scenarios.runner import BackendScenario, ScenarioRun
    from fnnkit.train import TrainRecord

PLOTTED = (("50.00", ":"), ("99.00", "-"))  # scenario plot: percentile, line style


def _pyplot():
    """matplotlib drawing to files only (Agg): never needs a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | os.PathLike, **savefig) -> Path:
    """The PNG written atomically (never half a file), and the figure's memory freed either way."""
    try:
        return atomic_write(Path(path), lambda temp: fig.savefig(temp, format="png", **savefig))
    finally:
        plt.close(fig)


def plot_training_curves(records: Sequence[TrainRecord], path: str | os.PathLike) -> Path:
    """Loss and test accuracy against iteration, every variant on one figure (written atomically)."""
    plt = _pyplot()
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
    return _save(plt, fig, path, dpi=110)


def write_plot(run: BenchRun, path: str | os.PathLike) -> Path:
    """Per variant: throughput against batch size (log-log), and the smallest batch's latency distribution."""
    plt = _pyplot()
    variants = list(dict.fromkeys(r.variant for r in run.rows)) or ["-"]
    fig, axes = plt.subplots(
        2, len(variants), figsize=(max(6.5, 4.2 * len(variants)), 7.5), squeeze=False, constrained_layout=True
    )
    for column, variant in enumerate(variants):
        rows = [r for r in run.rows if r.variant == variant]
        _throughput(axes[0][column], rows, variant)
        _latency(axes[1][column], rows, variant)
    fig.suptitle(
        f"fnnkit bench {run.run_id}\n{run.header.environment.get('cpu', '')}; threads {run.threads.get('policy', '')}",
        fontsize="small",
    )
    return _save(plt, fig, path, dpi=100)


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
    chosen = [r for r in rows if r.batch_size == smallest and r.latency.distribution_us]
    stats = [
        {"label": f"{r.backend}\n{r.device}", "med": d["p50"], "q1": d["p25"], "q3": d["p75"], "whislo": d["p1"],
         "whishi": d["p99"], "fliers": []}
        for r in chosen
        for d in [r.latency.distribution_us]
    ]  # fmt: skip
    if stats:
        ax.bxp(stats, showfliers=False)
        ax.tick_params(axis="x", labelsize="x-small", rotation=45)
    ax.set(yscale="log", title=f"{variant}: latency at batch {smallest} (p1-p99)", ylabel="µs per call")
    ax.grid(alpha=0.3, axis="y", which="both")


def write_scenario_plot(run: ScenarioRun, path: str | Path) -> Path:
    """p50 and p99 against the offered rate, one colour per backend (null SUT dashed grey), bound drawn in."""
    plt = _pyplot()
    bound = run.config["latency_bound_ms"]
    fig, ax = plt.subplots(figsize=(10, 5), dpi=120)
    for i, entry in enumerate([run.overhead, *run.results]):
        _plot_backend(ax, entry, "grey" if entry is run.overhead else f"C{i}")
    ax.axhline(bound, color="red", linewidth=1)
    ax.annotate(f"bound: p99 ≤ {bound:g} ms", (0.01, bound), xycoords=("axes fraction", "data"), color="red",
                va="bottom", fontsize=8)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (queries/s, one sample each)")
    ax.set_ylabel("latency from scheduled arrival (ms)")
    variant = run.results[0].variant if run.results else ""
    ax.set_title(f"{run.config['scenario']} scenario, variant {variant}: p50 dotted, p99 solid; × = INVALID")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))  # outside: never over a curve
    fig.tight_layout()
    return _save(plt, fig, path)


def _plot_backend(ax, entry: BackendScenario, color: str) -> None:
    steps = sorted((s for s in entry.steps if s.target_qps), key=lambda s: s.target_qps)
    if not steps:
        return
    rates = [s.target_qps for s in steps]
    for percentile, style in PLOTTED:
        values = [s.p(percentile) for s in steps]
        label = f"{entry.backend} p{percentile.rstrip('0').rstrip('.')}"
        ax.plot(rates, values, style, color=color, label=label, marker=".")
    bad = [(s.target_qps, s.p("99.00")) for s in steps if not s.valid]
    if bad:
        ax.scatter(*zip(*bad, strict=True), marker="x", color=color, zorder=3)


def write_tune_plot(record: dict, path: str | os.PathLike) -> Path:
    """Peak requests/s against p99 for every deployment a tune measured: one colour per backend, the
    bound as a line, the frontier joined, the pick ringed — the answer at a glance."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    bound = record["config"]["latency_bound_ms"]
    colors = dict(zip(record["accuracy"], plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4, strict=False))
    for backend, color in colors.items():
        points = [t for t in record["trials"] if t["deployment"]["backend"] == backend and t["peak_qps"]]
        for fidelity, marker in (("short", "o"), ("full", "D")):  # full-length runs as diamonds
            shown = [t for t in points if t["fidelity"] == fidelity]
            if shown:
                ax.scatter(
                    [t["p99_ms"] for t in shown], [t["peak_qps"] for t in shown], color=color, alpha=0.7,
                    marker=marker, label=f"{backend} ({record['accuracy'][backend]:.2f}%), {fidelity} runs",
                )  # fmt: skip
    front = sorted(record["frontier"], key=lambda p: p["p99_ms"])
    if front:
        ax.plot([p["p99_ms"] for p in front], [p["peak_qps"] for p in front], "k--", lw=1, label="frontier")
    if record["pick"]:
        pick = record["pick"]
        ax.scatter([pick["p99_ms"]], [pick["peak_qps"]], s=260, facecolors="none", edgecolors="red", lw=2, label="pick")
    ax.axvline(bound, color="red", lw=1, ls=":", label=f"p99 bound {bound:g} ms")
    ax.set_xlabel("p99 latency at the peak, ms")
    ax.set_ylabel("peak requests/s under the bound")
    ax.set_title(f"fnnkit tune: {record['dataset']}/{record['variant']}")
    ax.set_xlim(left=0, right=bound * 1.05)
    peaks = [t["peak_qps"] for t in record["trials"] if t["peak_qps"]]
    ax.set_ylim(bottom=0, top=max(peaks, default=1.0) * 1.1)  # room above the best point and its ring
    ax.yaxis.set_major_formatter(lambda value, _: f"{value:,.0f}")
    ax.legend(fontsize=8, loc="lower right")
    return _save(plt, fig, path, dpi=120, bbox_inches="tight")
