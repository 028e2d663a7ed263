"""One record in, one record out, across a fresh isolated process (``fnnkit.spawn``).

How bench workers (``launch.WorkerProcess``) and LoadGen runs (``scenarios.runs.FreshProcessRuns``)
start their processes: the job is written as JSON into a private folder, the child runs
``module.main([job, outcome])`` isolated, and its outcome is read back through the record's model.
A child that ran out of time or died without an outcome is one FnnkitError naming what it measured;
one that said it was ready (``mark_ready``) and then ran past its run's allowance is ``ChildStopped``.
"""

from __future__ import annotations

import subprocess
import tempfile
import traceback
from pathlib import Path
from typing import TypeVar

from fnnkit.bench.records import Record, read_record, save_record
from fnnkit.errors import FnnkitError
from fnnkit.spawn import StoppedAfterReady, python_module_argv, run_isolated

R = TypeVar("R", bound=Record)


class ChildStopped(FnnkitError):
    """The child was ready, then ran past its run's allowance: a hang, not a slow load."""


def run_child(
    module: str,
    job: Record,
    outcome: type[R],
    what: str,
    timeout: float,
    env_defaults: dict[str, str] | None = None,
    after_ready: float | None = None,
) -> R:
    """Run ``module`` on ``job`` in a fresh process; its outcome, or an FnnkitError saying why there is none.

    With ``after_ready``, ``timeout`` bounds the child until it calls ``mark_ready`` and ``after_ready``
    the rest of its life.
    """
    with tempfile.TemporaryDirectory(prefix="fnnkit-child-job-") as tmp:
        job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "outcome.json"
        save_record(job, job_path)
        argv = python_module_argv(module, str(job_path), str(out_path))
        try:
            proc = run_isolated(
                argv, timeout=timeout, env_defaults=env_defaults, cwd=tmp, ready=ready_file(out_path),
                after_ready=after_ready,
            )  # fmt: skip
        except StoppedAfterReady:
            hung = f"measuring {what} went on {after_ready:g} s past its start without ending; stopped"
            raise ChildStopped(hung) from None
        except subprocess.TimeoutExpired:
            raise FnnkitError(f"measuring {what} took over {timeout:.0f} s; stopped") from None
        if not out_path.exists():
            tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
            raise FnnkitError(f"the process measuring {what} died (exit {proc.returncode}) without a result:\n{tail}")
        return read_record(outcome, out_path, f"outcome of {what}", "the same command again")


def ready_file(out_path: str | Path) -> Path:
    """Where a child says its start (loading, warming) is behind it: beside its outcome."""
    return Path(out_path).with_name("ready")


def mark_ready(out_path: str | Path) -> None:
    """Called by a child when what it was started to time begins (``run_child``'s ``after_ready``)."""
    ready_file(out_path).touch()


def crash_message(exc: BaseException) -> str:
    """A bug or a runtime crash inside a child, as the parent shows it: the error and its traceback's tail."""
    tail = "".join(traceback.format_exception(exc)[-6:])
    return f"{type(exc).__name__}: {exc}\n{tail}"
