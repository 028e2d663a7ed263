"""The run's JSON (atomic, beside LoadGen's logs) and the PNG: latency percentiles vs offered load."""

from __future__ import annotations

from pathlib import Path

from fnnkit.bench.scenarios.runner import BackendScenario, ScenarioRun

PLOTTED = (("50.00", ":"), ("99.00", "-"))  # percentile, line style


def save_scenario_run(run: ScenarioRun, path: str | Path) -> Path:
    from fnnkit.store import atomic_write_json

    return atomic_write_json(path, run.as_dict())


def write_scenario_plot(run: ScenarioRun, path: str | Path) -> Path:
    """p50 and p99 against the offered rate, one colour per backend (null SUT dashed grey), bound drawn in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fnnkit.store import atomic_write

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
    try:
        return atomic_write(path, lambda temp: fig.savefig(temp, format="png"))
    finally:
        plt.close(fig)


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
