"""`fnnkit coldstart`: per backend, what a fresh process pays before its first answer."""

from __future__ import annotations

from pathlib import Path

import typer

from fnnkit.cli import app
from fnnkit.cli.options import ARTIFACTS, TRAINED_DATASET, number, output_path
from fnnkit.cli.render import coldstart_table, console
from fnnkit.env import MAX_THREADS, environment

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
    repeats: int = number(10, "--repeats", "Fresh processes per backend (p50/p90 over them).", 1, 1000, short="-n"),
    threads: int = number(1, "--threads", "Intra-op threads in each process.", 1, MAX_THREADS),
    json_path: Path | None = output_path("--json", "Also write the results to this JSON file."),
    artifacts: Path = ARTIFACTS,
) -> None:
    """Time import, load, first inference and the total of a fresh process, per backend; p50/p90 over repeats.

    Example: fnnkit coldstart --variant A --repeats 10 --json artifacts/bench/coldstart.json
    """
    from fnnkit.backends import resolve_backends
    from fnnkit.bench.coldstart import measure_cold_starts, save_cold_starts
    from fnnkit.store import find_variant_dir
    from fnnkit.variants import get_spec

    spec = get_spec(variant)
    names = [b.name for b in resolve_backends(backend)]
    folder = find_variant_dir(artifacts, spec.name, dataset)
    with console.status("cold starts") as status:
        results, skipped = measure_cold_starts(
            folder, names, repeats, threads, on_run=lambda name, i: status.update(f"{name}: run {i + 1}/{repeats}")
        )
    console.print(coldstart_table(results, spec.name, threads, repeats))
    for name, why in skipped:
        console.print(f"[yellow]skipped[/] {name}: {why}", highlight=False, soft_wrap=True)
    if json_path is not None:
        meta = {"variant": spec.name, "folder": str(folder), "threads": threads, "environment": environment()}
        console.print(f"wrote {save_cold_starts(json_path, results, meta | {'skipped': skipped})}")
