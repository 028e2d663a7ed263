"""One record in, one record out, across a fresh isolated process (``fnnkit.spawn``).

How bench workers (``launch.WorkerProcess``) and LoadGen runs (``scenarios.runs.FreshProcessRuns``)
start their processes: the job is written as JSON into a private folder, the child runs
``module.main([job, outcome])`` isolated, and its outcome is read back through the record's model.
A child that ran out of time or died without an outcome is one FnnkitError naming what it measured.
"""

from __future__ import annotations

import subprocess
import tempfile
import traceback
from pathlib import Path
from typing import TypeVar

from fnnkit.bench.records import Record, read_record, save_record
from fnnkit.errors import FnnkitError
from fnnkit.spawn import python_module_argv, run_isolated

R = TypeVar("R", bound=Record)


def run_child(
    module: str, job: Record, outcome: type[R], what: str, timeout: float, env_defaults: dict[str, str] | None = None
) -> R:
    """Run ``module`` on ``job`` in a fresh process; its outcome, or an FnnkitError saying why there is none."""
    with tempfile.TemporaryDirectory(prefix="fnnkit-child-job-") as tmp:
        job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "outcome.json"
        save_record(job, job_path)
        argv = python_module_argv(module, str(job_path), str(out_path))
        try:
            proc = run_isolated(argv, timeout=timeout, env_defaults=env_defaults, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise FnnkitError(f"measuring {what} took over {timeout:.0f} s; stopped") from None
        if not out_path.exists():
            tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
            raise FnnkitError(f"the process measuring {what} died (exit {proc.returncode}) without a result:\n{tail}")
        return read_record(outcome, out_path, f"outcome of {what}", "the same command again")


def crash_message(exc: BaseException) -> str:
    """A bug or a runtime crash inside a child, as the parent shows it: the error and its traceback's tail."""
    tail = "".join(traceback.format_exception(exc)[-6:])
    return f"{type(exc).__name__}: {exc}\n{tail}"
