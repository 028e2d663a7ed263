"""`fnnkit verify`: every check fnnkit runs before loading, on a whole artifacts folder, as a table."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from fnnkit.cli import app, console, err_console
from fnnkit.cli.options import ARTIFACTS

PROBLEMS_EXIT = 1  # damaged files are a finding, not a usage error (2)


@app.command()
def verify(
    path: Path | None = typer.Argument(
        None, help="An artifacts folder, one variant folder, or one file (default: the --artifacts root)."
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


def verify_table(checks: list, root: Path) -> Table:
    """File (relative to what was asked for), check, and ok with what was confirmed, or the problem."""
    table = Table(title=f"fnnkit verify {root}", title_style="bold")
    table.add_column("file", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("result")
    base = root if root.is_dir() else root.parent
    for c in checks:
        try:
            shown = str(c.file.relative_to(base))
        except ValueError:
            shown = str(c.file)
        result = f"[green]ok[/] [dim]{escape(c.note)}[/]" if c.ok else f"[bold red]problem:[/] {escape(c.problem)}"
        table.add_row(escape(shown), c.check, result)
    return table


__all__ = ["verify", "verify_table"]
