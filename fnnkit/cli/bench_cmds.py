"""`fnnkit bench` (its `latency` subcommand, the default) and `fnnkit backends`: which backend to deploy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from fnnkit.bench.config import BenchConfig
from fnnkit.cli import app
from fnnkit.cli.options import (
    ARTIFACTS,
    DATA_DIR,
    DEVICES_OPTION,
    TRAINED_DATASET,
    VARIANT,
    build,
    field_number,
    input_path,
    number,
    output_path,
)
from fnnkit.cli.plots import write_plot
from fnnkit.cli.render import backends_table, console, err_console, print_gate, print_run, wrote
from fnnkit.errors import ConfigError

REGRESSION_EXIT = 1  # a slower run is a result, not a usage error (2)
MOVED = {"--scenario": "fnnkit bench load --scenario ..."}  # old spellings: one line naming the new command


class LatencyByDefault(TyperGroup):
    """``fnnkit bench [options]`` is ``fnnkit bench latency [options]``: the run the README shows stays bare."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            for old, new in MOVED.items():
                if any(a == old or a.startswith(old + "=") for a in args):
                    raise ConfigError(f"`fnnkit bench {old}` moved: run `{new}` (see `fnnkit bench load --help`)")
            args = ["latency", *args]
        return super().parse_args(ctx, args)


bench_app = typer.Typer(
    cls=LatencyByDefault,
    help="Measure backends: latency (the default: `fnnkit bench \\[options]` is `fnnkit bench latency \\[options]`), "
    "load (MLPerf LoadGen) or coldstart.",
    rich_markup_mode="rich",
)
app.add_typer(bench_app, name="bench")
BACKENDS = typer.Option(["all"], "--backend", "-b", help="Backend name(s), repeatable or comma list, or all.")


@bench_app.command()
def latency(
    variant: str = VARIANT,
    backend: list[str] = BACKENDS,
    devices: Any = DEVICES_OPTION,  # a tuple of device names, resolved once by the option's callback
    batch_sizes: str = typer.Option("1,64,1024,8192", "--batch-sizes", help="Comma list of positive batch sizes."),
    threads: int | None = field_number(
        BenchConfig,
        "threads",
        "--threads",
        "Threads for torch and ONNX Runtime \\[default: 1 up to batch 64, all cores above].",
    ),
    min_time: float = field_number(
        BenchConfig,
        "min_time_s",
        "--min-time",
        "Seconds each row is timed at least; it goes on (up to 4x) until the median is stable.",
    ),  # fmt: skip
    json_path: Path | None = output_path("--json", "Result JSON \\[default: <artifacts>/bench/<run-id>.json]."),
    csv_path: Path | None = output_path("--csv", "Also write every row as CSV."),
    plot_path: Path | None = output_path("--plot", "Also write a PNG: throughput vs batch, latency spread."),
    compare: Path | None = input_path("--compare", "Baseline JSON from an earlier run: show % change per row."),
    fail_threshold: float = number(
        10.0,
        "--fail-threshold",
        "With --compare: exit 1 when a row is slower by more than this %.",
        0,
        10**6,
        above=True,
    ),  # fmt: skip
    accuracy_tolerance: float = field_number(
        BenchConfig,
        "accuracy_tolerance",
        "--accuracy-tolerance",
        "Points of test accuracy a recommended backend may differ from eager by.",
    ),  # fmt: skip
    prepare: bool = typer.Option(
        False, "--prepare", help="Train on the bundled sample and export whatever is missing first."
    ),
    in_process: bool = typer.Option(False, "--in-process", help="Measure in this process (faster, less isolated)."),
    wait_policy: str = typer.Option(
        "auto",
        "--wait-policy",
        help="Idle threads between calls: auto (spin when the machine is quiet just before each backend), spin, "
        "or passive. Each row records which was used.",
    ),  # fmt: skip
    dataset: str = TRAINED_DATASET,
    data_dir: Path | None = DATA_DIR,
    artifacts: Path = ARTIFACTS,
) -> None:
    """Accuracy, latency and throughput of every backend; the fastest accurate one per batch size.

    Example: fnnkit bench --variant A,E --backend eager,onnxruntime --batch-sizes 1,1024
    """
    from fnnkit.bench import load_run, parse_batch_sizes, run_bench, save_run, write_csv
    from fnnkit.bench.launch import InProcess, WorkerProcess
    from fnnkit.store import ensure_writable_dir

    config = build(
        BenchConfig,
        variants=tuple(variant.split(",")),
        backends=tuple(backend),
        devices=devices,
        batch_sizes=parse_batch_sizes(batch_sizes),
        threads=threads,
        min_time_s=min_time,
        accuracy_tolerance=accuracy_tolerance,
        artifacts=str(artifacts),
        dataset=None if dataset == "auto" else dataset,
        data_dir=str(data_dir) if data_dir else None,
        wait_policy=wait_policy.strip().lower(),
    )
    if json_path is None:  # the default place must be writable too, before minutes of measuring
        ensure_writable_dir(artifacts / "bench")
    baseline = load_run(compare) if compare else None  # a bad baseline fails before minutes of measuring
    if prepare:
        prepare_lines(config)

    with Progress(
        TextColumn("[bold]bench"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        TimeElapsedColumn(), console=err_console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("starting", total=None)

        def show(done: int, total: int, what: str) -> None:
            progress.update(task, completed=done, total=total, description=what)

        run = run_bench(config, on_progress=show, launcher=InProcess() if in_process else WorkerProcess())

    print_run(run, config)
    written = [save_run(run, json_path or artifacts / "bench" / f"{run.run_id}.json")]
    if csv_path:
        written.append(write_csv(run, csv_path))
    if plot_path:
        written.append(write_plot(run, plot_path))
    wrote(written)
    if baseline is not None:
        _gate(run, baseline, compare, fail_threshold)


def prepare_lines(config: BenchConfig) -> None:
    """``--prepare``: train and export what ``config`` lacks, one dim line per step."""
    from fnnkit.bench import prepare_artifacts

    for line in prepare_artifacts(config, on_step=lambda step: console.print(f"[dim]prepare:[/] {step}")):
        console.print(f"  {line}", style="dim")


def _gate(run, baseline, path: Path, threshold: float) -> None:
    from fnnkit.bench import compare_runs

    result = compare_runs(run, baseline, threshold)
    print_gate(result, path, threshold)
    if result.regressions:
        err_console.print(f"[bold red]regression:[/] {len(result.regressions)} row(s) slower than +{threshold:g}%")
        raise typer.Exit(REGRESSION_EXIT)
    console.print(f"[green]no row slower than +{threshold:g}%[/]")


@app.command()
def backends() -> None:
    """Every backend on every device: available here or not, and why.

    Example: fnnkit backends
    """
    from fnnkit.backends import BACKENDS, DEVICES
    from fnnkit.capabilities import cpu_capabilities

    console.print(f"this CPU: {cpu_capabilities().describe()}", highlight=False)
    verdicts = [(backend, [backend.available(device) for device in DEVICES]) for backend in BACKENDS.values()]
    console.print(backends_table(verdicts, DEVICES))
