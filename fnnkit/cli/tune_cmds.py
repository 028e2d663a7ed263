"""`fnnkit tune`: the deployment of one model that serves the most requests/s under a p99 bound."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from fnnkit.cli import app
from fnnkit.cli.options import (
    ARTIFACTS,
    DATA_DIR,
    TRAINED_DATASET,
    build,
    field_number,
    folder_option,
    input_path,
    output_path,
)
from fnnkit.cli.render import console, show, wrote
from fnnkit.tune.compare import BUSY_CORES
from fnnkit.tune.config import TuneConfig as T

NO_PICK_EXIT = 1  # measured, but no deployment confirmed a peak: a finding about the machine, not a usage error


@app.command()
def tune(
    variant: str = typer.Option("C", "--variant", "-v", help="A, B, C, D or E: one model per tune."),
    dataset: str = TRAINED_DATASET,
    latency_bound_ms: float = field_number(T, "latency_bound_ms", "--latency-bound-ms", "The p99 bound to meet, ms."),
    min_accuracy: float | None = field_number(
        T, "min_accuracy", "--min-accuracy", "Backends below this test accuracy (%) are never timed."
    ),
    budget_s: float = field_number(
        T,
        "budget_s",
        "--budget-s",
        "Seconds of measuring the search plans within; the first short peak search "
        "always runs, so a budget below its cost (tens of seconds) is overrun by it.",
    ),
    backends: str = typer.Option("all", "--backends", "-b", help="Backends to consider: a comma list or all."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda."),
    json_path: Path | None = output_path("--json", "The tune record \\[default: <artifacts>/tune/<name>.json]."),
    plot: Path | None = output_path("--plot", "PNG of peak rate vs p99 \\[default: beside the record]."),
    write_triton: Path | None = folder_option(
        None, "--write-triton", "Write the best ONNX Runtime deployment found as a Triton model repository here."
    ),
    write_serve: Path | None = output_path("--write-serve", "Write the pick as a `fnnkit serve --config` file here."),
    compare: Path | None = input_path(
        "--compare", "An earlier tune record: each backend's and the pick's peak then and now, % change."
    ),
    artifacts: Path = ARTIFACTS,
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Search backend x batching (max batch, queue delay, workers) for the most requests/s under a p99 bound.

    Example: fnnkit tune --variant C --latency-bound-ms 2 --min-accuracy 95.5 --budget-s 300 --write-serve serve.json
    """
    from fnnkit.store import atomic_write_json, ensure_writable_dir, find_variant_dir
    from fnnkit.tune.record import read_tune
    from fnnkit.tune.run import run_tune

    config = build(
        T, latency_bound_ms=latency_bound_ms, min_accuracy=min_accuracy, budget_s=budget_s, backends=backends,
        device=device,
    )  # fmt: skip
    earlier = read_tune(compare) if compare else None  # a bad record fails before minutes of measuring
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
    if earlier is not None:
        show_comparison(record, earlier, compare)
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


def show_comparison(record: dict, earlier, path: Path) -> None:
    """This tune against ``earlier`` (a validated TuneRecord): the table, then why it may not compare."""
    from fnnkit.tune.compare import compare_tunes
    from fnnkit.tune.record import TuneRecord

    result = compare_tunes(TuneRecord.model_validate(record), earlier)
    show(comparison_table(result, path, earlier.run_id))
    for line in comparison_lines(result):
        console.print(line, highlight=False)


def comparison_table(result, path: Path, run_id: str) -> Table:
    """Per backend (the pick first): the best peak at the bound in the earlier run and now, and the change."""
    table = Table(title=f"Change vs {path} (tune {run_id}; peak req/s at the bound; + is faster)")
    for column in ("", "earlier", "earlier req/s", "now", "now req/s", "change"):
        table.add_column(column, justify="right" if column.endswith("req/s") or column == "change" else "left")
    for c in result.changes:
        pct = c.change_pct
        change = "-" if pct is None else f"{pct:+.1f}%"
        colour = "" if pct is None or abs(pct) < 5 else "green" if pct > 0 else "red"  # within 5%: LoadGen's noise
        table.add_row(
            c.label, _brief(c.earlier, c.label == "pick"), _peak(c.earlier), _brief(c.now, c.label == "pick"),
            _peak(c.now), f"[{colour}]{change}[/]" if colour else change,
        )  # fmt: skip
    return table


def comparison_lines(result) -> list[str]:
    """Whether the pick changed; then, in plain words, why the two runs may not measure the same thing."""
    pick = next(c for c in result.changes if c.label == "pick")
    if pick.earlier is None and pick.now is None:
        lines = ["neither tune found a deployment that met its bound"]
    elif not result.pick_changed:
        lines = ["the pick is the same deployment as in the earlier tune"]
    else:
        lines = [f"the pick changed: earlier {_brief(pick.earlier, True)}, now {_brief(pick.now, True)}"]
    if result.incomparable:
        lines.append("[bold yellow]not comparable:[/] " + "; ".join(result.incomparable))
    lines += [f"[yellow]note:[/] {note}" for note in result.notes]
    return lines


def _brief(trial, with_backend: bool) -> str:
    if trial is None:
        return "-"
    d = trial.deployment
    where = f"{d.backend} " if with_backend else ""
    return f"{where}b{d.max_batch} {d.max_queue_delay_us}µs {d.workers}w ({trial.fidelity})"


def _peak(trial) -> str:
    return "-" if trial is None or trial.peak_qps is None else f"{trial.peak_qps:,.0f}"


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
        lines.append(
            f"no deployment confirmed a peak with p99 <= {record['config']['latency_bound_ms']:g} ms on this machine "
            "(a short search reports a rate only when most of its runs there meet the bound)"
        )
        return lines
    pick, runner = record["pick"], record["runner_up"]
    measured = (
        "full-length runs"
        if pick["fidelity"] == "full"
        else "short runs only: the budget ended before a full-length search did"
    )
    lines.append(
        f"pick: {pick['deployment']['backend']} ({_settings(pick)}): {pick['peak_qps']:,.0f} req/s ({measured})"
    )
    if runner:
        said = f"runner-up: {runner['deployment']['backend']} ({_settings(runner)}): {runner['peak_qps']:,.0f} req/s"
        if runner["fidelity"] == "short":
            said += " (short runs; the budget ended before a full-length search of it did)"
        if record["margin"] is not None:
            said += f"; the pick is {100 * record['margin']:+.1f}%"
            said += " (short runs against short runs)" if record.get("margin_fidelity") == "short" else ""
        lines.append(said)
    if record["machine"]["others_cores_max"] > BUSY_CORES:
        lines.append(
            f"other processes kept up to {record['machine']['others_cores_max']:.1f} cores busy: "
            "the figures are lower than on a quiet machine"
        )
    return lines


__all__ = ["comparison_lines", "comparison_table", "frontier_table", "summary_lines", "tune"]
