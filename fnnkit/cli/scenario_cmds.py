"""`fnnkit bench load`: MLPerf LoadGen scenarios, the peak rate under a p99 bound.

Every numeric option takes its default and bounds from ``ScenarioConfig`` (``field_number``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from fnnkit.bench.scenarios.config import ScenarioConfig
from fnnkit.cli.bench_cmds import BACKENDS, bench_app, prepare_lines
from fnnkit.cli.options import (
    ARTIFACTS,
    DATA_DIR,
    DEVICES_OPTION,
    TRAINED_DATASET,
    build,
    field_number,
    output_path,
)
from fnnkit.cli.plots import write_scenario_plot
from fnnkit.cli.render import (
    console,
    no_peak_line,
    scenario_step,
    scenario_steps_table,
    scenario_summary_table,
    show,
    wrote,
)
from fnnkit.errors import ConfigError

NO_PEAK_EXIT = 1  # --find-peak measured, but no rate met the bound or none was confirmed: a finding, not a usage error
S = ScenarioConfig


@bench_app.command()
def load(
    scenario: str = typer.Option(
        "server", "--scenario", help="single-stream | multi-stream | offline | server (see docs/reference.md)."
    ),
    variant: str = typer.Option("C", "--variant", "-v", help="One variant: A, B, C, D or E."),
    backend: list[str] = BACKENDS,
    devices: Any = DEVICES_OPTION,
    threads: int = field_number(S, "threads", "--threads", "Intra-op threads of torch and ONNX Runtime."),
    qps: float = field_number(
        S, "qps", "--qps", "Server: offered queries/s; offline: expected samples/s (sizes the run)."
    ),
    latency_bound_ms: float = field_number(S, "latency_bound_ms", "--latency-bound-ms", "p99 latency bound, ms."),
    find_peak: bool = typer.Option(False, "--find-peak", help="Server: search the highest rate LoadGen calls VALID."),
    max_batch: int = field_number(S, "max_batch", "--max-batch", "Largest batch the batcher forms."),
    max_queue_delay_us: float = field_number(
        S, "max_queue_delay_us", "--max-queue-delay-us", "Longest wait for a fuller batch, µs (0 measured best)."
    ),
    coalesce_queries: bool = typer.Option(
        S.model_fields["coalesce_queries"].default,  # stated once, in ScenarioConfig
        "--coalesce/--no-coalesce",
        help="Server: queries already due reach the batcher in one call.",
    ),
    fresh_process: bool = typer.Option(
        S.model_fields["fresh_process"].default,
        "--fresh-process/--same-process",
        help="Each LoadGen run in a fresh process (a run's tail grew with the runs its process made before).",
    ),
    workers: int = field_number(S, "workers", "--workers", "Threads calling the model."),
    seed: int = field_number(S, "seed", "--seed", "LoadGen's seeds: same seed, same arrivals."),
    min_duration_ms: int = field_number(S, "min_duration_ms", "--min-duration-ms", "Shortest LoadGen run."),
    min_query_count: int = field_number(S, "min_query_count", "--min-query-count", "Fewest queries per LoadGen run."),
    time_cap_s: float = field_number(S, "time_cap_s", "--time-cap-s", "Hard cap per LoadGen run, s."),
    min_qps: float = field_number(S, "min_qps", "--min-qps", "--find-peak gives up below this rate."),
    max_qps: float = field_number(S, "max_qps", "--max-qps", "--find-peak does not offer more than this rate."),
    peak_precision: float = field_number(
        S,
        "peak_precision",
        "--peak-precision",
        "--find-peak stops when failing and passing rates differ by this fraction.",
    ),
    confirm_runs: int = field_number(
        S,
        "confirm_runs",
        "--confirm-runs",
        "--find-peak: extra runs at the rate found; most must be VALID to report it.",
    ),
    json_path: Path | None = output_path("--json", "Result JSON \\[default: <artifacts>/bench/scenario-<time>.json]."),
    plot_path: Path | None = output_path("--plot", "Also write a PNG: latency against offered load (server)."),
    prepare: bool = typer.Option(
        False, "--prepare", help="Train on the bundled sample and export whatever is missing first."
    ),
    dataset: str = TRAINED_DATASET,
    data_dir: Path | None = DATA_DIR,
    artifacts: Path = ARTIFACTS,
) -> None:
    """MLPerf LoadGen scenarios: requests/s under a p99 bound, with dynamic batching, per backend.

    Example: fnnkit bench load --scenario server --variant C --backend eager,onnxruntime --find-peak
    """
    from fnnkit.backends import resolve_backends
    from fnnkit.bench import BenchConfig
    from fnnkit.bench.scenarios import run_scenarios, save_scenario_run
    from fnnkit.bench.scenarios.loadgen import loadgen
    from fnnkit.store import find_variant_dir

    options = {k: v for k, v in locals().items() if k in S.model_fields and k != "scenario"}
    config = build(S, scenario=scenario.strip().lower(), **options)
    loadgen()  # not installed: say how to install it before anything else
    if "," in variant or variant.strip().lower() == "all":
        raise ConfigError(f"fnnkit bench load runs one variant at a time; got --variant {variant!r} (e.g. --variant C)")
    names = [b.name for b in resolve_backends(backend)]
    if plot_path and config.scenario != "server":
        raise ConfigError("--plot draws latency against offered load: it needs --scenario server")
    trained = None if dataset == "auto" else dataset
    if prepare:
        prepare_lines(build(
            BenchConfig, variants=(variant,), backends=tuple(names), devices=devices, artifacts=str(artifacts),
            dataset=trained, data_dir=str(data_dir) if data_dir else None,
        ))  # fmt: skip
    folder = find_variant_dir(artifacts, variant, trained)
    json_path = json_path or artifacts / "bench" / f"scenario-{time.strftime('%Y%m%d-%H%M%S')}.json"
    log_root = json_path.with_name(json_path.stem + ".loadgen")

    def step(backend: str, result, scenario: str) -> None:
        scenario_step(backend, result, scenario, calibration=scenario != config.scenario)

    run = run_scenarios(config, folder, names, devices, log_root, str(data_dir) if data_dir else None, step)
    for entry in [run.overhead, *run.results]:
        show(scenario_steps_table(entry, config))
    show(scenario_summary_table(run, config))
    for s in run.skipped:
        console.print(f"[yellow]skipped[/] {s.backend} on {s.device}: {s.reason}", highlight=False, soft_wrap=True)
    for entry in [run.overhead, *run.results]:
        if any(r.contended for r in [*entry.calibration, *entry.steps]) and no_peak_line(entry, config) is None:
            console.print(
                f"[yellow]contended:[/] other processes kept up to {entry.others_cores:.1f} cores busy during "
                f"{entry.backend}'s runs; its numbers are suspect (see the busy cores column)",
                highlight=False,
            )
    written = [save_scenario_run(run, json_path)]
    if plot_path:
        written.append(write_scenario_plot(run, plot_path))
    wrote(written, f"; LoadGen's logs in [bold]{log_root}[/]")
    missing = [line for entry in run.results if (line := no_peak_line(entry, config))]
    for line in missing:
        console.print(f"[red]{line}[/]", highlight=False, soft_wrap=True)
    if missing:
        raise typer.Exit(NO_PEAK_EXIT)
