"""`fnnkit bench --scenario ...`: MLPerf LoadGen scenarios, the peak rate under a p99 bound.

``fnnkit bench`` parses the options it shares with this command (variant, backend, device,
threads, json, plot, prepare, dataset, artifacts) and hands the rest here; they are parsed
by ``_options`` below (numbers through ``number()``), so a typo is still one clear error line.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from fnnkit.cli.options import SEED_MAX, number
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
from fnnkit.env import MAX_BATCH
from fnnkit.errors import ConfigError

NO_PEAK_EXIT = 1  # --find-peak measured, but no rate met the bound or none was confirmed: a finding, not a usage error
SCENARIO_HELP = (
    "Load scenario through MLPerf LoadGen: single-stream | multi-stream | offline | server. "
    "Its own options: --qps, --latency-bound-ms, --find-peak, --max-batch, --max-queue-delay-us, --workers, "
    "--seed, --min-duration-ms, --min-query-count, --time-cap-s, --peak-precision, --confirm-runs, --min-qps, "
    "--max-qps "
    "(see docs/reference.md)."
)


def _options(
    qps: float = number(
        1000.0, "--qps", "Server: offered queries/s; offline: expected samples/s (sizes the run).", 0, 1e9, above=True
    ),
    latency_bound_ms: float = number(2.0, "--latency-bound-ms", "p99 latency bound, ms.", 0, 3_600_000, above=True),
    find_peak: bool = typer.Option(False, "--find-peak", help="Server: search the highest rate LoadGen calls VALID."),
    max_batch: int = number(64, "--max-batch", "Largest batch the batcher forms.", 1, MAX_BATCH),
    max_queue_delay_us: float = number(
        0.0, "--max-queue-delay-us", "Longest wait for a fuller batch, µs (0 measured best).", 0, 10_000_000
    ),
    workers: int = number(1, "--workers", "Threads calling the model.", 1, 256),
    seed: int = number(0, "--seed", "LoadGen's seeds: same seed, same arrivals.", 0, SEED_MAX),
    min_duration_ms: int = number(5000, "--min-duration-ms", "Shortest LoadGen run.", 1, 86_400_000),
    min_query_count: int = number(500, "--min-query-count", "Fewest queries per LoadGen run.", 1, 10**9),
    time_cap_s: float = number(60.0, "--time-cap-s", "Hard cap per LoadGen run, s.", 0, 86_400, above=True),
    min_qps: float = number(20.0, "--min-qps", "--find-peak gives up below this rate.", 0, 1e9, above=True),
    max_qps: float = number(1e6, "--max-qps", "--find-peak does not offer more than this rate.", 0, 1e9, above=True),
    peak_precision: float = number(
        0.05,
        "--peak-precision",
        "--find-peak stops when failing and passing rates differ by this fraction.",
        0,
        0.99,
        above=True,
    ),
    confirm_runs: int = number(
        2, "--confirm-runs", "--find-peak: extra runs at the rate found; most must be VALID to report it.", 1, 100
    ),
) -> dict:
    return dict(locals())


_parser = typer.Typer(add_completion=False)
_parser.command()(_options)


def parse_scenario_options(args: list[str]) -> dict:
    """The scenario-only flags from the arguments ``fnnkit bench`` did not recognise."""
    command = typer.main.get_command(_parser)
    try:
        return command.main(args=list(args), standalone_mode=False, prog_name="fnnkit bench --scenario")
    except typer.TyperException as exc:  # typer's own click: bad value, unknown option, missing value
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        raise ConfigError(f"fnnkit bench --scenario: {message}") from None


def bench_scenario(
    scenario: str,
    args: list[str],
    *,
    variant: str,
    backends: list[str],
    devices: tuple[str, ...],
    threads: int | None,
    json_path: Path | None,
    plot_path: Path | None,
    prepare: bool,
    dataset: str,
    data_dir: Path | None,
    artifacts: Path,
) -> None:
    """Run one scenario for each backend, print the steps and the peak, write JSON (+ PNG) and keep LoadGen's logs."""
    from fnnkit.backends import resolve_backends
    from fnnkit.bench.scenarios import ScenarioConfig, loadgen, run_scenarios, save_scenario_run
    from fnnkit.store import find_variant_dir

    if scenario is None:
        raise ConfigError(f"fnnkit bench: no such option(s) {' '.join(args)} (scenario options need --scenario)")
    options = parse_scenario_options(args)  # a mistyped flag or value is the first thing to hear about
    loadgen()  # not installed: say how to install it before anything else
    if "," in variant or variant.strip().lower() == "all":
        raise ConfigError(f"--scenario runs one variant at a time; got --variant {variant!r} (e.g. --variant C)")
    names = [b.name for b in resolve_backends(backends)]
    config = ScenarioConfig(scenario=scenario.strip().lower(), threads=threads or 1, **options)
    if plot_path and config.scenario != "server":
        raise ConfigError("--plot draws latency against offered load: it needs --scenario server")
    trained = None if dataset == "auto" else dataset
    if prepare:
        _prepare(variant, names, devices, artifacts, trained, data_dir)
    folder = find_variant_dir(artifacts, variant, trained)
    json_path = json_path or artifacts / "bench" / f"scenario-{time.strftime('%Y%m%d-%H%M%S')}.json"
    log_root = json_path.with_name(json_path.stem + ".loadgen")

    def step(backend: str, result) -> None:
        scenario_step(backend, result, config.scenario)

    run = run_scenarios(config, folder, names, devices, log_root, str(data_dir) if data_dir else None, step)
    for entry in [run.overhead, *run.results]:
        show(scenario_steps_table(entry, config))
    show(scenario_summary_table(run, config))
    for s in run.skipped:
        console.print(f"[yellow]skipped[/] {s['backend']} on {s['device']}: {s['reason']}")
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


def _prepare(variant, names, devices, artifacts, dataset, data_dir) -> None:
    from fnnkit.bench import BenchConfig, prepare_artifacts

    config = BenchConfig(
        variants=(variant,), backends=tuple(names), devices=devices, artifacts=str(artifacts), dataset=dataset,
        data_dir=str(data_dir) if data_dir else None,
    )  # fmt: skip
    for line in prepare_artifacts(config, on_step=lambda step: console.print(f"[dim]prepare:[/] {step}")):
        console.print(f"  {line}", style="dim")
