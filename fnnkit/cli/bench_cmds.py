"""`fnnkit bench` and `fnnkit backends`: measure every backend, show which one to deploy."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fnnkit.cli import app, console, err_console
from fnnkit.cli.options import ARTIFACTS, DATA_DIR, TRAINED_DATASET, VARIANT, number, output_path
from fnnkit.cli.scenario_cmds import SCENARIO_HELP, bench_scenario
from fnnkit.env import MAX_THREADS
from fnnkit.store import ensure_writable_dir

DEVICE_CHOICE = typer.Option(
    "all", "--device", help="cpu | cuda | all ('all': CUDA rows are skipped, with the reason, without a GPU)."
)
REGRESSION_EXIT = 1  # a slower run is a result, not a usage error (2)


def resolve_devices(name: str) -> tuple[str, ...]:
    """``all`` -> every device (unavailable ones become skipped rows); ``cuda`` without a GPU -> clear error."""
    from fnnkit.backends import DEVICES
    from fnnkit.env import resolve_device

    if name.strip().lower() == "all":
        return DEVICES
    return (resolve_device(name.strip()).type,)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    variant: str = VARIANT,
    backend: list[str] = typer.Option(
        ["all"], "--backend", "-b", help="Backend name(s), repeatable or comma list, or all."
    ),
    device: str = DEVICE_CHOICE,
    batch_sizes: str = typer.Option("1,64,1024,8192", "--batch-sizes", help="Comma list of positive batch sizes."),
    threads: int | None = number(
        None,
        "--threads",
        "Threads for torch and ONNX Runtime \\[default: 1 up to batch 64, all cores above].",
        1,
        MAX_THREADS,
    ),  # fmt: skip
    min_time: float = number(
        0.3,
        "--min-time",
        "Seconds each row is timed at least; it goes on (up to 4x) until the median is stable.",
        0,
        600,
        above=True,
    ),  # fmt: skip
    json_path: Path | None = output_path("--json", "Result JSON \\[default: <artifacts>/bench/<run-id>.json]."),
    csv_path: Path | None = output_path("--csv", "Also write every row as CSV."),
    plot_path: Path | None = output_path("--plot", "Also write a PNG: throughput vs batch, latency spread."),
    compare: Path | None = typer.Option(
        None, "--compare", help="Baseline JSON from an earlier run: show % change per row."
    ),
    fail_threshold: float = number(
        10.0,
        "--fail-threshold",
        "With --compare: exit 1 when a row is slower by more than this %.",
        0,
        10**6,
        above=True,
    ),  # fmt: skip
    accuracy_tolerance: float = number(
        0.0, "--accuracy-tolerance", "Points of test accuracy a recommended backend may differ from eager by.", 0, 100
    ),
    prepare: bool = typer.Option(
        False, "--prepare", help="Train on the bundled sample and export whatever is missing first."
    ),
    in_process: bool = typer.Option(False, "--in-process", help="Measure in this process (faster, less isolated)."),
    dataset: str = TRAINED_DATASET,
    data_dir: Path | None = DATA_DIR,
    artifacts: Path = ARTIFACTS,
    scenario: str | None = typer.Option(None, "--scenario", help=SCENARIO_HELP),
) -> None:
    """Accuracy, latency and throughput of every backend; the fastest accurate one per batch size.

    Example: fnnkit bench --variant A,E --backend eager,onnxruntime --batch-sizes 1,1024
    """
    if scenario is not None or ctx.args:  # LoadGen scenarios live in scenario_cmds; they parse ctx.args
        return bench_scenario(
            scenario, ctx.args, variant=variant, backends=backend, devices=resolve_devices(device), threads=threads,
            json_path=json_path, plot_path=plot_path, prepare=prepare, dataset=dataset, data_dir=data_dir,
            artifacts=artifacts,
        )  # fmt: skip
    from fnnkit.bench import BenchConfig, load_run, parse_batch_sizes, prepare_artifacts, run_bench
    from fnnkit.bench.launch import InProcess, WorkerProcess

    config = BenchConfig(
        variants=tuple(variant.split(",")),
        backends=tuple(backend),
        devices=resolve_devices(device),
        batch_sizes=parse_batch_sizes(batch_sizes),
        threads=threads,
        min_time_s=min_time,
        accuracy_tolerance=accuracy_tolerance,
        artifacts=str(artifacts),
        dataset=None if dataset == "auto" else dataset,
        data_dir=str(data_dir) if data_dir else None,
    )
    if json_path is None:  # the default place must be writable too, before minutes of measuring
        ensure_writable_dir(artifacts / "bench")
    baseline = load_run(compare) if compare else None  # a bad baseline fails before minutes of measuring
    if prepare:
        for line in prepare_artifacts(config, on_step=lambda step: console.print(f"[dim]prepare:[/] {step}")):
            console.print(f"  {line}", style="dim")

    with Progress(
        TextColumn("[bold]bench"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        TimeElapsedColumn(), console=err_console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("starting", total=None)

        def show(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=what)

        run = run_bench(config, on_progress=show, launcher=InProcess() if in_process else WorkerProcess())

    _print_run(run, config)
    _write_outputs(run, json_path or artifacts / "bench" / f"{run.run_id}.json", csv_path, plot_path)
    if baseline is not None:
        _gate(run, baseline, compare, fail_threshold)


@app.command()
def backends() -> None:
    """Every backend on every device: available here or not, and why.

    Example: fnnkit backends
    """
    from fnnkit.backends import BACKENDS, DEVICES
    from fnnkit.capabilities import cpu_capabilities

    console.print(f"this CPU: {cpu_capabilities().describe()}", highlight=False)
    table = Table(title="Backends", title_style="bold")
    table.add_column("backend", no_wrap=True)
    for column in ("precision", "runs", *DEVICES):
        table.add_column(column)
    for backend in BACKENDS.values():
        cells = []
        for device in DEVICES:
            ok, reason = backend.available(device)
            cells.append(f"[green]yes[/] [dim]{reason}[/]" if ok else f"[yellow]no[/]: {reason}")
        table.add_row(backend.name, backend.precision, backend.summary, *cells)
    console.print(table)


# --------------------------------------------------------------------------- printing


def _us(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} µs" if value < 1000 else f"{value / 1000:.2f} ms"


def _rate(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def _trust(rows: list) -> str:
    """What, if anything, makes a backend's numbers doubtful, and at which batch sizes."""
    checks = (("unstable", lambda r: not r.stable), ("wide", lambda r: r.wide), ("contended", lambda r: r.contended))
    problems = []
    for label, failed in checks:
        sizes = [str(r.batch_size) for r in rows if failed(r)]
        if sizes:
            problems.append(f"{label} b{','.join(sizes)}")
    if any(r.contended for r in rows):
        problems[-1] += f" ({max(r.others_cores for r in rows):.1f} cores busy elsewhere)"
    return "[yellow]" + "; ".join(problems) + "[/]" if problems else "[green]ok[/]"


def _print_run(run, config) -> None:
    env = run.environment
    console.print(
        f"[bold]{env['cpu']}[/], {env['cores']} cores; threads {run.threads['policy']}; each backend "
        f"{'in its own process' if run.isolation == 'subprocess' else 'in this process'}"
    )
    for c in run.ceilings:
        console.print(
            f"matmul ceiling {c.device} {c.threads} thread(s), {c.precision}: [bold]{c.gflops:.0f} GFLOP/s[/] "
            f"({c.size}³)"
        )
    for device in config.devices:
        rows = [r for r in run.rows if r.device == device]
        if rows:
            _show(_latency_table(device, rows, config.batch_sizes[0]))
            _show(_throughput_table(device, rows, config.batch_sizes))
    if run.skipped:
        _show(_skipped_table(run.skipped))
    _show(_recommendation_table(run, config.batch_sizes))


def _skipped_table(skipped: list) -> Table:
    """One line per (device, reason), naming every backend it applies to: a GPU-less machine gets one line."""
    reasons: dict[tuple[str, str], list[str]] = {}
    for s in skipped:
        names = reasons.setdefault((s.device, s.reason), [])
        if s.backend not in names:
            names.append(s.backend)
    table = Table(title="Not measured here", title_style="bold")
    for column in ("device", "backends", "reason"):
        table.add_column(column)
    for (device, reason), names in reasons.items():
        table.add_row(device, ", ".join(names), reason)
    return table


def _show(table: Table) -> None:
    """Print at the table's natural width: a pipe or CI log (80 columns to rich) gets every digit."""
    from rich.measure import Measurement

    natural = Measurement.get(console, console.options.update_width(1000), table).maximum
    width = console.width
    console.width = max(width, natural)  # rich clamps print(width=) to the console's width
    try:
        console.print(table)
    finally:
        console.width = width


def _backends(rows: list) -> list[tuple[str, str, dict[int, object]]]:
    """(variant, backend, {batch: row}) in measurement order."""
    out: dict[tuple[str, str], dict[int, object]] = {}
    for r in rows:
        out.setdefault((r.variant, r.backend), {})[r.batch_size] = r
    return [(v, b, by_batch) for (v, b), by_batch in out.items()]


def _best(text: str, is_best: bool) -> str:
    return f"[bold green]{text}[/]" if is_best else text


def _latency_table(device: str, rows: list, batch: int) -> Table:
    """Accuracy next to latency: a fast backend that disagrees with eager is red."""
    table = Table(title=f"{device}: accuracy and latency at batch {batch}", title_style="bold")
    table.add_column("var")
    table.add_column("backend", no_wrap=True)
    on_device = any(r.e2e_p50_us is not None for r in rows)  # GPU: copies in and out are part of a request
    extra = ("p50 end-to-end", "peak device MB") if on_device else ()
    for column in ("acc %", "max|Δ|", "setup", "p50", "p90", "p99", "spread", *extra):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("trust")
    fastest = {
        v: min(r.p50_us for r in rows if r.variant == v and r.batch_size == batch) for v in {r.variant for r in rows}
    }
    previous = None
    for variant, name, by_batch in _backends(rows):
        if previous is not None and variant != previous:
            table.add_section()
        previous = variant
        group = list(by_batch.values())
        row = by_batch[batch]
        accuracy = "-" if row.accuracy is None else f"{row.accuracy:.2f}"
        diff = "-" if row.max_abs_diff is None else f"{row.max_abs_diff:.1e}"
        spread = f"{row.spread:.0%}" if not row.wide else f"[yellow]{row.spread:.0%}![/]"
        device_cells = (_us(row.e2e_p50_us), f"{row.peak_device_mb or 0:.0f}") if on_device else ()
        table.add_row(
            variant, name, accuracy, diff, _setup(group), _best(_us(row.p50_us), row.p50_us == fastest[variant]),
            _us(row.p90_us), _us(row.p99_us), spread, *device_cells, _trust(group),
            style="red" if row.agrees is False else None,
        )  # fmt: skip
    return table


def _throughput_table(device: str, rows: list, batch_sizes: tuple[int, ...]) -> Table:
    largest = batch_sizes[-1]
    table = Table(title=f"{device}: throughput, samples/s (× eager)", title_style="bold")
    table.add_column("var")
    table.add_column("backend", no_wrap=True)
    for batch in batch_sizes:
        table.add_column(f"batch {batch}", justify="right", no_wrap=True)
    table.add_column(f"of own-precision ceiling at {largest}", justify="right")
    table.add_column("peak RSS MB", justify="right")
    fastest = {
        (r.variant, r.batch_size): max(
            x.throughput for x in rows if x.variant == r.variant and x.batch_size == r.batch_size
        )
        for r in rows
    }
    previous = None
    for variant, name, by_batch in _backends(rows):
        if previous is not None and variant != previous:
            table.add_section()
        previous = variant
        cells = []
        for batch in batch_sizes:
            r = by_batch.get(batch)
            if r is None:
                cells.append("-")
                continue
            text = _rate(r.throughput) + (f" ×{r.speedup_vs_eager:.1f}" if r.speedup_vs_eager else "")
            cells.append(_best(text, r.throughput == fastest[(variant, batch)]))
        last = by_batch.get(largest)
        share = f"{last.ceiling_share:.0%}" if last and last.ceiling_share is not None else "-"
        if last and last.precision != "fp32":
            share = f"[dim]{share} ({last.precision})[/]"  # fewer bits per FLOP: not comparable with fp32
        head = next(iter(by_batch.values()))
        table.add_row(
            variant, name, *cells, share, f"{head.peak_rss_mb:.0f}", style="red" if head.agrees is False else None
        )
    return table


def _setup(group: list) -> str:
    """Load time, plus the slowest first call (where compilers compile for a new shape)."""
    first = max(r.first_call_ms for r in group)
    return f"{group[0].load_s:.2f}s+{first / 1000:.2f}s" if first >= 100 else f"{group[0].load_s:.2f}s+{first:.0f}ms"


def _recommendation_table(run, batch_sizes: tuple[int, ...]) -> Table:
    table = Table(title="Recommended backend (fastest whose accuracy matches eager)", title_style="bold")
    table.add_column("variant")
    table.add_column("device")
    for b in batch_sizes:
        table.add_column(f"batch {b}")
    cells: dict[tuple[str, str], dict[int, str]] = {}
    for rec in run.recommendations:
        if rec.backend is None:
            text = "[red]none matches eager[/]"
        elif rec.speedup_vs_eager is None:
            text = f"{rec.backend} ({_us(rec.p50_us)})"
        else:
            text = f"{rec.backend} ({_us(rec.p50_us)}, ×{rec.speedup_vs_eager:.1f})"
        cells.setdefault((rec.variant, rec.device), {})[rec.batch_size] = text
    for (variant, device), by_batch in cells.items():
        table.add_row(variant, device, *(by_batch.get(b, "-") for b in batch_sizes))
    return table


def _write_outputs(run, json_path: Path, csv_path: Path | None, plot_path: Path | None) -> None:
    from fnnkit.bench import save_run, write_csv, write_plot

    written = [save_run(run, json_path)]
    if csv_path:
        written.append(write_csv(run, csv_path))
    if plot_path:
        written.append(write_plot(run, plot_path))
    console.print("wrote " + ", ".join(f"[bold]{p}[/]" for p in written))


def _gate(run, baseline, path: Path, threshold: float) -> None:
    from fnnkit.bench import compare_runs

    result = compare_runs(run, baseline, threshold)
    table = Table(title=f"Change vs {path} (p50 latency; + is slower; fail above +{threshold:g}%)", title_style="bold")
    for column in ("variant", "backend", "device", "batch", "baseline", "now", "change", "trusted"):
        table.add_column(column, justify="right" if column in ("batch", "baseline", "now", "change") else "left")
    for c in result.changes:
        change = f"{c.change_pct:+.1f}%"
        table.add_row(
            c.variant, c.backend, c.device, str(c.batch_size), _us(c.baseline_p50_us), _us(c.current_p50_us),
            f"[bold red]{change}[/]" if c.regression else change, "yes" if c.trusted else "[yellow]no[/]",
        )  # fmt: skip
    _show(table)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    if result.only_baseline:
        console.print(f"[yellow]note:[/] {len(result.only_baseline)} baseline row(s) were not measured this time")
    if result.regressions:
        err_console.print(f"[bold red]regression:[/] {len(result.regressions)} row(s) slower than +{threshold:g}%")
        raise typer.Exit(REGRESSION_EXIT)
    console.print(f"[green]no row slower than +{threshold:g}%[/]")
