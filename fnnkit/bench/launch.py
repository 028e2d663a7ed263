"""Where a job runs: ``InProcess()`` or ``WorkerProcess()``, each with ``.run(job) -> Outcome``.

The launcher is the third choice of a benchmark, independent of backend and scenario. A
worker process per job means one runtime's thread pool, allocator or JIT cache cannot slow
down or speed up the next one, and its peak memory is its own; in-process is faster to
start and lets a test or a debugger see everything. Both return an Outcome, never raise an
fnnkit error: the caller decides what a failed job means.
"""

from __future__ import annotations

from fnnkit.bench.child import run_child
from fnnkit.bench.job import Job, Outcome
from fnnkit.bench.measure import measure
from fnnkit.bench.waiting import OMP
from fnnkit.errors import FnnkitError

WORKER_TIMEOUT_S = 1800  # a cold torch.compile / TensorRT build on a slow machine, with margin


class InProcess:
    """Measure in this process: quick to start, and a debugger or a test sees everything."""

    name = "in-process"

    def run(self, job: Job) -> Outcome:
        try:
            return measure(job)
        except FnnkitError as exc:  # a user-facing failure: its message already says what to do
            return Outcome(status="error", message=str(exc))


class WorkerProcess:
    """Measure in a fresh, isolated Python process per job (the default of ``fnnkit bench``)."""

    name = "subprocess"

    def __init__(self, timeout_s: float = WORKER_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s

    def run(self, job: Job) -> Outcome:
        """``python -m fnnkit.bench.worker`` isolated (``fnnkit.bench.child``), one JSON file in and one out."""
        what = f"{job.backend} on {job.device} ({job.variant_dir})"
        env = {"OMP_WAIT_POLICY": omp_policy(job)}  # read as OpenMP starts; the user's own wins
        try:
            return run_child("fnnkit.bench.worker", job, Outcome, what, self.timeout_s, env)
        except FnnkitError as exc:  # out of time, or died without an outcome: the caller decides what it means
            return Outcome(status="error", message=str(exc))


def omp_policy(job: Job) -> str:
    """OpenMP's wait policy for a job's worker: ACTIVE only where OpenMP runs the backend's own calls.

    Under ACTIVE an OpenMP pool's threads keep spinning after their work: when workers gathered the
    input batch with torch, its pool spun beside ONNX Runtime's own on 2 cores and halved ONNX
    Runtime at batch 8192 (8.1 ms against 3.7-4.0 ms, measured). A worker running an ONNX file
    now imports no torch, but any OpenMP pool in it would do the same, so every backend whose
    threads are not OpenMP's gets PASSIVE; its own switch carries the spin choice.
    """
    from fnnkit.backends import get_backend

    spin_omp = job.wait_policy == "spin" and get_backend(job.backend).wait_switch == "omp"
    return OMP["spin" if spin_omp else "passive"]


Launcher = InProcess | WorkerProcess
