"""The two ways tests run the CLI, and nothing else does.

- ``run_fnnkit``: a real process, as a user types it. For exit codes, signals, isolation, and
  anything that must not share this process's imports or state.
- ``fnnkit_in_process`` (the ``cli`` fixture in conftest.py): the same entry point, ``main()``,
  called in this process. Fast; for messages, tables and written files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from fnnkit.cli import console, err_console, main


def cli_env(**extra: str) -> dict[str, str]:
    """Wide, uncoloured output, so a message is one line a test can search."""
    return {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **extra}


def fnnkit_argv(*args: str) -> list[str]:
    """The command line of a real ``fnnkit`` process (for ``Popen`` in signal tests)."""
    return [sys.executable, "-m", "fnnkit", *args]


def run_fnnkit(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        fnnkit_argv(*args), capture_output=True, text=True, env=env or cli_env(), timeout=timeout, cwd=cwd
    )


def fnnkit_in_process(capsys, monkeypatch, *args: str) -> tuple[int, str]:
    """The CLI's real entry point in this process: its exit code and everything it printed.

    ``main`` installs SIGINT/SIGTERM handlers; they are restored so pytest keeps its own.
    """
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(sys, "argv", ["fnnkit", *args])
    for shown in (console, err_console):
        monkeypatch.setattr(shown, "_width", 250)  # wide tables: messages stay on one line
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    out = capsys.readouterr()
    return code, out.out + out.err


def assert_user_error(result: subprocess.CompletedProcess | tuple[int, str], *fragments: str) -> None:
    """A user mistake: non-zero exit, no traceback, and the message names what is wrong.

    Takes a finished process or an in-process ``(exit code, text)``.
    """
    if isinstance(result, tuple):
        code, text = result
    else:
        code, text = result.returncode, result.stdout + result.stderr
    assert code != 0, text
    assert "Traceback" not in text, text
    for fragment in fragments:
        assert fragment in text, text
