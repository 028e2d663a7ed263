"""The command line: the only place that parses a user's arguments, prints for a user and exits.

(fnnkit's own children — bench workers, cold-start probes — read the arguments fnnkit gives them.)

Each command lives in a small module of this package and registers itself on ``app``;
the library functions it calls return plain values and never print.
"""

from __future__ import annotations

import signal
import sys

import typer

from fnnkit.cli.render import console, err_console, printable
from fnnkit.errors import FnnkitError, Interrupted

app = typer.Typer(
    name="fnnkit",
    help="Train the five classic MNIST feedforward networks, export them, and benchmark every backend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


_stops: list[Interrupted] = []  # typer turns any KeyboardInterrupt into a silent exit 130: the message is kept here


def _interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    """Ctrl-C and `kill` unwind the stack like an exception, so temp files are removed on the way out."""
    _stops.append(
        Interrupted(
            f"interrupted by {signal.Signals(signum).name}: files already written are complete; "
            "nothing was half-written"
        )
    )
    raise _stops[-1]


def _say(exc: BaseException) -> None:
    err_console.print(f"[bold red]error:[/] {printable(str(exc), keep_newlines=True)}", highlight=False, soft_wrap=True)


def main() -> None:
    """Console-script entry: user mistakes and damaged files end in one red line, not a traceback."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except (FnnkitError, Interrupted) as exc:
        _say(exc)
        sys.exit(exc.exit_code)
    except SystemExit as exc:
        if exc.code == Interrupted.exit_code and _stops:
            _say(_stops[-1])
        raise


from fnnkit.cli import (  # noqa: E402,F401  (each registers its commands)
    bench_cmds,
    coldstart_cmds,
    data_cmds,
    export_cmds,
    predict_cmds,
    scenario_cmds,
    serve_cmds,
    train_cmds,
    tune_cmds,
    verify_cmds,
)

__all__ = ["app", "console", "err_console", "main"]
