"""`fnnkit verify`: every check fnnkit runs before loading, on a whole artifacts folder, as a table."""

from __future__ import annotations

from pathlib import Path

import typer

from fnnkit.cli import app
from fnnkit.cli.options import ARTIFACTS, input_paths
from fnnkit.cli.render import console, err_console, verify_table

PROBLEMS_EXIT = 1  # damaged files are a finding, not a usage error (2)


@app.command()
def verify(
    path: Path | None = typer.Argument(
        None,
        help="An artifacts folder, one variant folder, or one file (default: the --artifacts root).",
        parser=str,
        callback=lambda value: input_paths(value, "PATH"),
    ),
    artifacts: Path = ARTIFACTS,
) -> None:
    """Check artifacts without running model code: schemas, sha256s, safetensors headers, ONNX checker.

    Example: fnnkit verify artifacts/mnist/C
    """
    from fnnkit.verify import verify as run_checks

    target = path or artifacts
    checks = run_checks(target)
    console.print(verify_table(checks, target))
    problems = [c for c in checks if not c.ok]
    files = len({c.file for c in checks})
    if problems:
        err_console.print(
            f"[bold red]{len(problems)} problem(s)[/] in {len({c.file for c in problems})} of {files} file(s): "
            "fnnkit refuses to load what failed; re-create it with fnnkit train / fnnkit export",
            highlight=False,
        )
        raise typer.Exit(PROBLEMS_EXIT)
    console.print(f"[green]all {len(checks)} checks passed[/] on {files} file(s) under {target}", highlight=False)


__all__ = ["verify", "verify_table"]
