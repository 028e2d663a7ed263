"""The command line: the only place that parses argv, prints and exits.

Each command lives in a small module of this package and registers itself on ``app``;
the library functions it calls return plain values and never print.
"""

from __future__ import annotations

import signal
import sys

import typer
from rich.console import Console
from rich.markup import escape

from fnnkit.errors import FnnkitError, Interrupted

app = typer.Typer(
    name="fnnkit",
    help="Train the five classic MNIST feedforward networks, export them, and benchmark every backend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)


def _interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    """Ctrl-C and `kill` unwind the stack like an exception, so temp files are removed on the way out."""
    raise Interrupted(
        f"interrupted by {signal.Signals(signum).name}: files already written are complete; nothing was half-written"
    )


def main() -> None:
    """Console-script entry: user mistakes and damaged files end in one red line, not a traceback."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except (FnnkitError, Interrupted) as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # an interrupt before our handler was installed, or raised by a library
        err_console.print("[bold red]error:[/] interrupted", highlight=False)
        sys.exit(130)


from fnnkit.cli import bench_cmds, export_cmds, train_cmds, verify_cmds  # noqa: E402,F401  (each registers its commands)
