"""`fnnkit coldstart`: per backend, what a fresh process pays before its first answer."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from fnnkit.cli import app, console
from fnnkit.cli.options import ARTIFACTS, TRAINED_DATASET

BACKEND = typer.Option(
    "eager,torchscript,aoti,onnxruntime,onnxruntime-int8-static,openvino",
    "--backend",
    "-b",
    help="Backends to start cold, a comma list or all (CPU only: start-up is where CPU deployments pay).",
)


@app.command()
def coldstart(
    variant: str = typer.Option("A", "--variant", "-v", help="One variant: A, B, C, D or E."),
    dataset: str = TRAINED_DATASET,
    backend: str = BACKEND,
    repeats: int = typer.Option(10, "--repeats", "-n", help="Fresh processes per backend (p50/p90 over them)."),
    threads: int = typer.Option(1, "--threads", help="Intra-op threads in each process."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the results to this JSON file."),
    artifacts: Path = ARTIFACTS,
) -> None:
    """Time import, load, first inference and the total of a fresh process, per backend; p50/p90 over repeats.

    Example: fnnkit coldstart --variant A --repeats 10 --json artifacts/bench/coldstart.json
    """
    from fnnkit.backends import resolve_backends
    from fnnkit.bench.coldstart import check_counts, measure_cold_starts, save_cold_starts
    from fnnkit.env import environment
    from fnnkit.store import find_variant_dir
    from fnnkit.variants import get_spec

    check_counts(repeats, threads)
    spec = get_spec(variant)
    names = [b.name for b in resolve_backends(backend)]
    folder = find_variant_dir(artifacts, spec.name, dataset)
    with console.status("cold starts") as status:
        results, skipped = measure_cold_starts(
            folder, names, repeats, threads, on_run=lambda name, i: status.update(f"{name}: run {i + 1}/{repeats}")
        )
    table = Table(title=f"Cold start, variant {spec.name}, {threads} thread(s), {repeats} fresh processes each")
    table.add_column("backend", no_wrap=True)
    for phase in ("import", "load", "first", "total"):
        table.add_column(f"{phase} p50 ms", justify="right")
    table.add_column("total p90 ms", justify="right")
    for r in results:
        cells = [f"{r.p50_s[p] * 1e3:.1f}" if p in r.p50_s else "-" for p in ("import", "load", "first", "total")]
        table.add_row(r.name, *cells, f"{r.p90_s['total'] * 1e3:.1f}")
    console.print(table)
    for name, why in skipped:
        console.print(f"[yellow]skipped[/] {name}: {why}", highlight=False, soft_wrap=True)
    if json_path is not None:
        meta = {"variant": spec.name, "folder": str(folder), "threads": threads, "environment": environment()}
        console.print(f"wrote {save_cold_starts(json_path, results, meta | {'skipped': skipped})}")
