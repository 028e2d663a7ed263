"""`fnnkit bench coldstart`: per backend, what a fresh process pays before its first answer."""

from __future__ import annotations

from pathlib import Path

import typer

from fnnkit.bench.config import ColdStartConfig
from fnnkit.cli import app
from fnnkit.cli.bench_cmds import bench_app
from fnnkit.cli.options import ARTIFACTS, TRAINED_DATASET, build, field_number, output_path
from fnnkit.cli.render import coldstart_table, console
from fnnkit.errors import ConfigError

BACKEND = typer.Option(
    ",".join(ColdStartConfig.model_fields["backends"].default),
    "--backend",
    "-b",
    help="Backends to start cold, a comma list or all (CPU only: start-up is where CPU deployments pay).",
)


@bench_app.command()
def coldstart(
    variant: str = typer.Option("A", "--variant", "-v", help="One variant: A, B, C, D or E."),
    dataset: str = TRAINED_DATASET,
    backend: str = BACKEND,
    repeats: int = field_number(
        ColdStartConfig, "repeats", "--repeats", "Fresh processes per backend (p50/p90 over them).", short="-n"
    ),
    threads: int = field_number(ColdStartConfig, "threads", "--threads", "Intra-op threads in each process."),
    json_path: Path | None = output_path("--json", "Also write the results to this JSON file."),
    artifacts: Path = ARTIFACTS,
) -> None:
    """Time import, load, first inference and the total of a fresh process, per backend; p50/p90 over repeats.

    Example: fnnkit bench coldstart --variant A --repeats 10 --json artifacts/bench/coldstart.json
    """
    from fnnkit.bench.coldstart import measure_cold_starts, save_cold_starts

    config = build(
        ColdStartConfig, variant=variant, backends=tuple(backend.split(",")), repeats=repeats, threads=threads,
        artifacts=str(artifacts), dataset=None if dataset == "auto" else dataset,
    )  # fmt: skip
    with console.status("cold starts") as status:
        run = measure_cold_starts(config, on_run=lambda name, i: status.update(f"{name}: run {i + 1}/{config.repeats}"))
    console.print(coldstart_table(run.results, config.variant, config.threads, config.repeats))
    for s in run.skipped:
        console.print(f"[yellow]skipped[/] {s.backend}: {s.reason}", highlight=False, soft_wrap=True)
    if json_path is not None:
        console.print(f"wrote {save_cold_starts(run, json_path)}")


@app.command("coldstart", hidden=True, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def coldstart_moved() -> None:
    raise ConfigError("`fnnkit coldstart` moved: run `fnnkit bench coldstart` with the same options")
