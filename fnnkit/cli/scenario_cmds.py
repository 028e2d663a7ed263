"""`fnnkit bench --scenario ...`: MLPerf LoadGen scenarios, the peak rate under a p99 bound.

``fnnkit bench`` parses the options it shares with this command (variant, backend, device,
threads, json, plot, prepare, dataset, artifacts) and hands the rest here; they are parsed
by ``SCENARIO_OPTIONS`` below, so a typo is still one clear error line.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from fnnkit.cli import console
from fnnkit.errors import ConfigError

SCENARIO_HELP = (
    "Load scenario through MLPerf LoadGen: single-stream | multi-stream | offline | server. "
    "Its own options: --qps, --latency-bound-ms, --find-peak, --max-batch, --max-queue-delay-us, --workers, "
    "--seed, --min-duration-ms, --min-query-count, --time-cap-s, --peak-precision, --min-qps, --max-qps "
    "(see docs/scenarios.md)."
)


def _options(
    qps: float = typer.Option(
        1000.0, "--qps", help="Server: offered queries/s; offline: expected samples/s (sizes the run)."
    ),
    latency_bound_ms: float = typer.Option(2.0, "--latency-bound-ms", help="p99 latency bound, ms."),
    find_peak: bool = typer.Option(False, "--find-peak", help="Server: search the highest rate LoadGen calls VALID."),
    max_batch: int = typer.Option(64, "--max-batch", help="Largest batch the batcher forms."),
    max_queue_delay_us: float = typer.Option(100.0, "--max-queue-delay-us", help="Longest wait for a fuller batch."),
    workers: int = typer.Option(1, "--workers", help="Threads calling the model."),
    seed: int = typer.Option(0, "--seed", help="LoadGen's seeds: same seed, same arrivals."),
    min_duration_ms: int = typer.Option(2000, "--min-duration-ms", help="Shortest LoadGen run."),
    min_query_count: int = typer.Option(500, "--min-query-count", help="Fewest queries per LoadGen run."),
    time_cap_s: float = typer.Option(60.0, "--time-cap-s", help="Hard cap per LoadGen run."),
    min_qps: float = typer.Option(20.0, "--min-qps", help="--find-peak gives up below this rate."),
    max_qps: float = typer.Option(1e6, "--max-qps", help="--find-peak does not offer more than this rate."),
    peak_precision: float = typer.Option(
        0.05, "--peak-precision", help="--find-peak stops when failing and passing rates differ by this fraction."
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
    from fnnkit.bench.scenarios import ScenarioConfig, loadgen, run_scenarios, save_scenario_run, write_scenario_plot
    from fnnkit.store import find_variant_dir

    if scenario is None:
        raise ConfigError(f"fnnkit bench: no such option(s) {' '.join(args)} (scenario options need --scenario)")
    loadgen()  # not installed: say how to install it before anything else
    if "," in variant or variant.strip().lower() == "all":
        raise ConfigError(f"--scenario runs one variant at a time; got --variant {variant!r} (e.g. --variant C)")
    names = [b.name for b in resolve_backends(backends)]
    config = ScenarioConfig(scenario=scenario.strip().lower(), threads=threads or 1, **parse_scenario_options(args))
    if plot_path and config.scenario != "server":
        raise ConfigError("--plot draws latency against offered load: it needs --scenario server")
    trained = None if dataset == "auto" else dataset
    if prepare:
        _prepare(variant, names, devices, artifacts, trained, data_dir)
    folder = find_variant_dir(artifacts, variant, trained)
    json_path = json_path or artifacts / "bench" / f"scenario-{time.strftime('%Y%m%d-%H%M%S')}.json"
    log_root = json_path.with_name(json_path.stem + ".loadgen")

    def show(backend: str, r) -> None:
        rate = f"{r.target_qps:,.0f} q/s" if r.target_qps else config.scenario
        p99 = "-" if r.p() is None else f"{r.p():.3f} ms"
        what = f"accuracy {r.accuracy:.2f}%" if r.mode == "accuracy" else f"p99 {p99}"
        console.print(f"[dim]{backend:>16} {rate:>12}: {what}, {_verdict(r.validity)}[/]", highlight=False)

    run = run_scenarios(config, folder, names, devices, log_root, str(data_dir) if data_dir else None, show)
    from fnnkit.cli.bench_cmds import _show  # at natural width: a pipe or CI log gets every digit

    for entry in [run.overhead, *run.results]:
        _show(_steps_table(entry, config))
    _show(_summary_table(run, config))
    for s in run.skipped:
        console.print(f"[yellow]skipped[/] {s['backend']} on {s['device']}: {s['reason']}")
    written = [save_scenario_run(run, json_path)]
    if plot_path:
        written.append(write_scenario_plot(run, plot_path))
    console.print("wrote " + ", ".join(f"[bold]{p}[/]" for p in written) + f"; LoadGen's logs in [bold]{log_root}[/]")


def _prepare(variant, names, devices, artifacts, dataset, data_dir) -> None:
    from fnnkit.bench import BenchConfig, prepare_artifacts

    config = BenchConfig(
        variants=(variant,), backends=tuple(names), devices=devices, artifacts=str(artifacts), dataset=dataset,
        data_dir=str(data_dir) if data_dir else None,
    )  # fmt: skip
    for line in prepare_artifacts(config, on_step=lambda step: console.print(f"[dim]prepare:[/] {step}")):
        console.print(f"  {line}", style="dim")


def _verdict(validity: str) -> str:
    return f"[green]{validity}[/]" if validity == "VALID" else f"[red]{validity}[/]"


def _ms(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.3f}"


def _steps_table(entry, config) -> Table:
    title = f"{entry.backend} on {entry.device}: every LoadGen run ({config.scenario}"
    title += f", p99 bound {config.latency_bound_ms:g} ms)" if config.scenario == "server" else ")"
    table = Table(title=title, title_style="bold")
    for column in ("#", "offered q/s", "done samples/s", "p50 ms", "p90 ms", "p99 ms", "batch", "verdict"):
        table.add_column(column, justify="right")
    table.add_column("why")
    numbered = [("offline", r) for r in entry.calibration] + [(str(i), r) for i, r in enumerate(entry.steps, 1)]
    for label, r in numbered:
        table.add_row(
            label, "-" if r.target_qps is None else f"{r.target_qps:,.0f}",
            "-" if r.completed_qps is None else f"{r.completed_qps:,.0f}",
            _ms(r.latency_ns.get("50.00")), _ms(r.latency_ns.get("90.00")), _ms(r.latency_ns.get("99.00")),
            f"{r.mean_batch:.1f}", _verdict(r.validity), "; ".join(r.reasons),
        )  # fmt: skip
    return table


def _summary_table(run, config) -> Table:
    """Per backend: the answer (peak rate under the bound, or the run's numbers) beside the SUT's own ceiling.

    The ceiling compared against is the null SUT's offline throughput: a rate, steadier on a busy
    machine than the null SUT's own p99-bound peak, which scheduler noise can pull far down.
    """
    search = config.find_peak
    title = (
        f"Peak rate with p99 ≤ {config.latency_bound_ms:g} ms (LoadGen VALID)"
        if search
        else f"{config.scenario}: LoadGen's result"
    )
    table = Table(title=title, title_style="bold")
    columns = ["backend", "device"]
    if search:
        columns += ["peak q/s", "p99 at peak ms", "offline samples/s", "of null SUT's"]
    else:
        columns += ["samples/s", "p50 ms", "p99 ms"]
    columns += ["verdict", "accuracy % (AccuracyOnly)"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("backend", "device") else "right")
    ceiling = _offline_rate(run.overhead)
    for entry in [run.overhead, *run.results]:
        final = entry.final
        if search:
            offline = _offline_rate(entry)
            share = f"{offline / ceiling:.0%}" if offline and ceiling and entry is not run.overhead else "-"
            peak = [f"{entry.peak_qps:,.0f}", _ms(final.latency_ns.get("99.00"))]
            if entry.peak_qps is None:
                peak = ["[red]no rate meets the bound[/]", "-"]
            cells = [*peak, "-" if offline is None else f"{offline:,.0f}", share]
        else:
            rate = final.completed_qps
            cells = ["-" if rate is None else f"{rate:,.0f}", _ms(final.latency_ns.get("50.00")),
                     _ms(final.latency_ns.get("99.00"))]  # fmt: skip
        acc = entry.accuracy
        accuracy = "-" if acc is None or acc.accuracy is None else f"{acc.accuracy:.2f} ({acc.validity})"
        name = f"{entry.backend} (SUT overhead)" if entry is run.overhead else entry.backend
        table.add_row(name, entry.device, *cells, _verdict(final.validity), accuracy)
    return table


def _offline_rate(entry) -> float | None:
    return entry.calibration[-1].completed_qps if entry.calibration else None
