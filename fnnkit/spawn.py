"""How fnnkit starts a fresh program (bench workers, cold-start probes, pip for the package-index
route, nvidia-smi): isolated from the working directory and stray ``PYTHON*`` settings, and tied to
the parent's life. (Training workers are forked by ``train_many``, running no new program; Ray
starts its own processes.)

Why: ``python -m pkg`` puts the current directory first on ``sys.path``, so a ``numpy.py``
beside the artifacts would run inside a bench worker; ``PYTHONSTARTUP``/``PYTHONPATH`` would
load foreign code likewise. A child started here runs ``python -I`` (no cwd, no user site, no
``PYTHON*`` variables) in a private temp folder, imports fnnkit from the very location the
parent imported it from, and is killed when the parent dies (``PR_SET_PDEATHSIG``) or is
interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1
READY_POLL_S = 0.2  # how often a phased run looks for its child's ready file
PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])  # the folder holding the fnnkit we run


def scrubbed_env(extra: dict[str, str] | None = None, force: dict[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` without any ``PYTHON*`` variable (``-I`` ignores them, grandchildren would not).

    ``extra`` fills in what the environment does not set; ``force`` overrides it.
    """
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PYTHON")}
    return {**(extra or {}), **env, **(force or {})}


def python_argv(code: str, *args: str) -> list[str]:
    """argv running ``code`` under ``python -I``, with fnnkit importable from PACKAGE_PARENT only.

    The child first asks the kernel to SIGKILL it when its parent dies (``PR_SET_PDEATHSIG``) and
    exits if the parent is already gone; done in the child itself, not in a ``preexec_fn``, which
    can deadlock a parent that runs threads (torch does).
    """
    bootstrap = (
        "import ctypes, os, sys; "
        f"ctypes.CDLL(None).prctl({_PR_SET_PDEATHSIG}, {int(signal.SIGKILL)}, 0, 0, 0); "
        f"os.getppid() == {os.getpid()} or os._exit(1); "
        f"sys.path.insert(0, {PACKAGE_PARENT!r})\n"
    )
    return [sys.executable, "-I", "-c", bootstrap + code, *args]


def python_module_argv(module: str, *args: str) -> list[str]:
    """argv that runs ``module.main(args)`` isolated (``python_argv``)."""
    return python_argv(f"from {module} import main; sys.exit(main(sys.argv[1:]))", *args)


class StoppedAfterReady(subprocess.TimeoutExpired):
    """The child said it was ready (``run_isolated``'s ``ready`` file), then ran past ``after_ready`` seconds."""


def run_isolated(
    argv: Sequence[str],
    *,
    timeout: float,
    env_defaults: dict[str, str] | None = None,
    cwd: str | None = None,
    ready: Path | None = None,
    after_ready: float | None = None,
) -> subprocess.CompletedProcess:
    """Run ``argv`` to completion with a scrubbed environment, in a private cwd.

    ``env_defaults`` are used only where the caller's environment does not set them. With ``ready``
    and ``after_ready``, ``timeout`` bounds the child's start (until it creates the file ``ready``) and
    ``after_ready`` what follows, so a child that hangs after a short run is stopped seconds after it,
    not at the end of a start allowance sized for a slow compile (``StoppedAfterReady``). On any
    exception here (timeout, Ctrl-C, SIGTERM turned into Interrupted) the child is killed before the
    exception propagates, so no orphan is left measuring.
    """
    with tempfile.TemporaryDirectory(prefix="fnnkit-child-") as private:
        child = subprocess.Popen(
            list(argv), cwd=cwd or private, env=scrubbed_env(env_defaults), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        with child:
            try:
                stdout, stderr = _communicate_in_phases(child, timeout, ready, after_ready)
            except BaseException:
                child.kill()
                child.communicate()
                raise
        return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


def _communicate_in_phases(
    child: subprocess.Popen, timeout: float, ready: Path | None, after_ready: float | None
) -> tuple[str, str]:
    """The child's output once it exits; TimeoutExpired when a phase runs past its limit."""
    if ready is None or after_ready is None:
        return child.communicate(timeout=timeout)
    deadline, since_ready = time.monotonic() + timeout, None
    while True:
        if since_ready is None and ready.exists():
            since_ready = time.monotonic()
            deadline = since_ready + after_ready
        wait = deadline - time.monotonic()
        if wait <= 0:
            if since_ready is None:
                raise subprocess.TimeoutExpired(child.args, timeout)
            raise StoppedAfterReady(child.args, after_ready)
        try:  # output is kept across retries (subprocess's documented contract)
            return child.communicate(timeout=wait if since_ready is not None else min(wait, READY_POLL_S))
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def start_isolated(
    argv: Sequence[str], *, env_force: dict[str, str] | None = None, stdout: Any = None, stderr: Any = None
) -> Iterator[subprocess.Popen]:
    """Start ``argv`` as ``run_isolated`` would (scrubbed environment, private cwd), for a caller that reads
    its output while it runs; the child is killed if the block is left early (an error, Ctrl-C)."""
    with tempfile.TemporaryDirectory(prefix="fnnkit-child-") as private:
        child = subprocess.Popen(
            list(argv), cwd=private, env=scrubbed_env(force=env_force), stdin=subprocess.DEVNULL,
            stdout=stdout, stderr=stderr, text=True,
        )  # fmt: skip
        with child:
            try:
                yield child
            finally:
                if child.poll() is None:
                    child.kill()
