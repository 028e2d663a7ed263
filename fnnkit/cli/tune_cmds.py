"""`fnnkit tune`: the deployment of one model that serves the most requests/s under a p99 bound."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from fnnkit.cli import app
from fnnkit.cli.options import ARTIFACTS, DATA_DIR, TRAINED_DATASET, build, field_number, folder_option, output_path
from fnnkit.cli.render import console, show, wrote
from fnnkit.tune.config import TuneConfig as T

NO_PICK_EXIT = 1  # measured, but no deployment met the bound: a finding about the machine, not a usage error


@app.command()
def tune(
    variant: str = typer.Option("C", "--variant", "-v", help="A, B, C, D or E: one model per tune."),
    dataset: str = TRAINED_DATASET,
    latency_bound_ms: float = field_number(T, "latency_bound_ms", "--latency-bound-ms", "The p99 bound to meet, ms."),
    min_accuracy: float | None = field_number(
        T, "min_accuracy", "--min-accuracy", "Backends below this test accuracy (%) are never timed."
    ),
    budget_s: float = field_number(T, "budget_s", "--budget-s", "Seconds of measuring the search may spend."),
    backends: str = typer.Option("all", "--backends", "-b", help="Backends to consider: a comma list or all."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda."),
    json_path: Path | None = output_path("--json", "The tune record \\[default: <artifacts>/tune/<name>.json]."),
    plot: Path | None = output_path("--plot", "PNG of peak rate vs p99 \\[default: beside the record]."),
    write_triton: Path | None = folder_option(
        None, "--write-triton", "Write the best ONNX Runtime deployment found as a Triton model repository here."
    ),
    write_serve: Path | None = output_path("--write-serve", "Write the pick as a `fnnkit serve --config` file here."),
    artifacts: Path = ARTIFACTS,
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Search backend x batching (max batch, queue delay, workers) for the most requests/s under a p99 bound.

    Example: fnnkit tune --variant C --latency-bound-ms 2 --min-accuracy 95.5 --budget-s 300 --write-serve serve.json
    """
    from fnnkit.store import atomic_write_json, ensure_writable_dir, find_variant_dir
    from fnnkit.tune.run import run_tune

    config = build(
        T, latency_bound_ms=latency_bound_ms, min_accuracy=min_accuracy, budget_s=budget_s, backends=backends,
        device=device,
    )  # fmt: skip
    folder = find_variant_dir(artifacts, variant.strip().upper(), dataset)
    name = f"{folder.parent.name}-{folder.name}-{latency_bound_ms:g}ms-{time.strftime('%Y%m%d-%H%M%S')}"
    json_path = json_path or ensure_writable_dir(artifacts / "tune") / f"{name}.json"
    plot = plot or json_path.with_suffix(".png")
    log_root = json_path.with_name(json_path.stem + ".loadgen")
    console.print(
        f"tuning {folder.parent.name}/{folder.name} for p99 <= {latency_bound_ms:g} ms within {budget_s:g} s ...",
        highlight=False,
    )
    record = run_tune(config, folder, log_root, str(data_dir) if data_dir else None)
    show(frontier_table(record))
    for line in summary_lines(record):
        console.print(line, highlight=False)
    atomic_write_json(json_path, record)
    from fnnkit.cli.plots import write_tune_plot

    write_tune_plot(record, plot)
    written = [json_path, plot]
    if write_triton is not None and record["pick"] is not None:
        from fnnkit.tune.deploy import write_triton as write_repository

        trial, model = write_repository(record, folder, write_triton)
        console.print(f"Triton: {model.name} serves {trial['deployment']['backend']} ({_settings(trial)})")
        written.append(model.folder)
    if write_serve is not None and record["pick"] is not None:
        from fnnkit.tune.deploy import write_serve as write_serve_file

        trial = write_serve_file(record, write_serve)
        console.print(
            f"serve config: {trial['deployment']['backend']} ({_settings(trial)}); run it with "
            f"`fnnkit serve --config {write_serve}`",
            highlight=False,
        )
        written.append(write_serve)
    wrote(written, f"; LoadGen's logs in [bold]{log_root}[/]")
    if record["pick"] is None:
        raise typer.Exit(NO_PICK_EXIT)


def _settings(trial: dict) -> str:
    d = trial["deployment"]
    return f"batch {d['max_batch']}, wait {d['max_queue_delay_us']} µs, {d['workers']} worker(s)"


def frontier_table(record: dict) -> Table:
    """The deployments nothing beats on accuracy, p99 and peak at once; the pick marked."""
    bound = record["config"]["latency_bound_ms"]
    table = Table(title=f"{record['dataset']}/{record['variant']}: the frontier under p99 <= {bound:g} ms")
    for column in ("", "backend", "batching", "accuracy %", "p99 ms", "peak req/s", "measured"):
        table.add_column(column, justify="right" if column in ("accuracy %", "p99 ms", "peak req/s") else "left")
    pick = record["pick"]["deployment"] if record["pick"] else None
    for point in record["frontier"]:
        d = point["deployment"]
        table.add_row(
            "pick" if d == pick else "",
            d["backend"],
            _settings(point),
            f"{point['accuracy']:.2f}",
            f"{point['p99_ms']:.2f}",
            f"{point['peak_qps']:,.0f}",
            point["fidelity"],
        )
    return table


def summary_lines(record: dict) -> list[str]:
    """The pick, its runner-up and the margin; what was dropped; how much of the space was seen."""
    lines = []
    for backend, why in record["dropped"].items():
        lines.append(f"not timed: {backend}: {why}")
    for backend, qps in record["outvoted"].items():
        lines.append(
            f"not searched: {backend}: with the default batching it did not sustain {qps:,.0f} req/s "
            "(the best peak so far + 5%)"
        )
    timed = {t["deployment"]["backend"] for t in record["trials"]} | set(record["outvoted"])
    unreached = [b for b in record["accuracy"] if b not in record["dropped"] and b not in timed]
    if unreached:
        lines.append(
            f"not reached within the budget: {', '.join(unreached)} (raise --budget-s, or name fewer --backends)"
        )
    space = record["space"]
    spent = f"{record['spent_s']:.0f} s of {record['budget_s']:g} s"
    lines.append(
        f"measured {space['covered']} of {space['size']} deployments in {spent}"
        + (" (budget spent: the search stopped early)" if record["out_of_budget"] else "")
    )
    if record["pick"] is None:
        lines.append(f"no deployment met p99 <= {record['config']['latency_bound_ms']:g} ms on this machine")
        return lines
    pick, runner = record["pick"], record["runner_up"]
    lines.append(f"pick: {pick['deployment']['backend']} ({_settings(pick)}): {pick['peak_qps']:,.0f} req/s")
    if runner:
        said = f"runner-up: {runner['deployment']['backend']} ({_settings(runner)}): {runner['peak_qps']:,.0f} req/s"
        if record["margin"] is not None:
            said += f"; the pick is {100 * record['margin']:+.1f}%"
        else:  # a short figure beside a full one: 1 s runs meet a p99 more easily, so no margin is claimed
            said += " from short runs only (the budget ended before its full-length run): no margin is claimed"
        lines.append(said)
    if record["machine"]["others_cores_max"] > 0.5:
        lines.append(
            f"other processes kept up to {record['machine']['others_cores_max']:.1f} cores busy: "
            "the figures are lower than on a quiet machine"
        )
    return lines


__all__ = ["frontier_table", "summary_lines", "tune"]
