"""Running the CLI as a user does: a real process, real exit code, output as text."""

from __future__ import annotations

import os
import subprocess
import sys


def run_fnnkit(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "fnnkit", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A user mistake: non-zero exit, no traceback, and the message names what is wrong."""
    text = result.stdout + result.stderr
    assert result.returncode != 0, text
    assert "Traceback" not in text, text
    for fragment in fragments:
        assert fragment in text, text
