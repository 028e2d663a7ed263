"""Tables are whole when the output is not a terminal: a pipe, a file, a CI log (80 columns to rich).

Every command prints through the consoles of ``fnnkit.cli.render``; the README walkthrough
(test_readme.py) checks each README command's piped output for a cut cell (``…``) too.
"""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from rich.table import Table

from fnnkit.cli.render import WholeTables


def _wide_table(columns: int = 12) -> Table:
    table = Table(title="wide")
    for i in range(columns):
        table.add_column(f"column number {i}", no_wrap=True)
    table.add_row(*[f"value {i:,}.123456" for i in range(columns)])
    return table


def test_a_table_wider_than_the_console_is_printed_whole():
    out = io.StringIO()
    console = WholeTables(file=out, width=80)  # what rich gives a pipe
    console.print(_wide_table())
    text = out.getvalue()
    assert "…" not in text and "column number 11" in text and "value 11.123456" in text
    assert max(len(line) for line in text.splitlines()) > 80
    assert console.width == 80  # the console is back at its width for what follows
    console.print("x " * 100)  # text still wraps at the console's width
    assert max(len(line) for line in out.getvalue().splitlines()[-3:]) <= 80


def test_every_console_of_the_cli_keeps_tables_whole():
    from fnnkit.cli import console, err_console

    assert isinstance(console, WholeTables) and isinstance(err_console, WholeTables)


@pytest.mark.slow  # a fresh fnnkit process that imports torch: ~2 s
def test_a_command_piped_into_a_file_prints_whole_tables(tmp_path):
    """A real process, stdout a pipe, no COLUMNS: `fnnkit backends` (its table is wider than 80 columns)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_COLOR": "1"}
    child = subprocess.run([sys.executable, "-m", "fnnkit", "backends"], capture_output=True, text=True, env=env,
                           timeout=120)  # fmt: skip
    assert child.returncode == 0, child.stderr
    assert "…" not in child.stdout, child.stdout
    row = next(line for line in child.stdout.splitlines() if line.startswith("│ eager "))
    assert "the reference every other backend" in row, child.stdout  # the cell is not folded onto more lines


def test_a_scenario_step_made_again_after_a_hung_process_says_so():
    """The step's line is where a user watching a search learns that a run was made twice."""
    from fnnkit.bench.scenarios.loadgen import LoadgenResult
    from fnnkit.cli.render import console, scenario_step

    def line(hung_before: int) -> str:
        result = LoadgenResult("performance", 1000.0, "VALID", [], 1000.0, {"99.00": 500_000}, 200_000, 2000, 1.0,
                               2.0, "logs", hung_before=hung_before)  # fmt: skip
        with console.capture() as captured:
            scenario_step("onnxruntime", result, "server")
        return captured.get()

    assert "made again" not in line(0)
    assert "made again: its first process hung after the run" in line(1) and "0.500 ms" in line(1)
