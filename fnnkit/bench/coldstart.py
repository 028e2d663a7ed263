"""Cold start: what a serverless function or a CLI pays before its first answer, per backend.

Every run is a fresh ``python`` process (no warm imports, no compiled graphs, no page cache
of our own making beyond the OS's), which times its own phases and reports them on one line:

- ``import``: fnnkit's backend registry and the backend's own module (torch for the torch
  backends; the ONNX Runtime and OpenVINO backends import no torch);
- ``load``: the backend's ``load`` (runtime import such as onnxruntime/openvino, sha256 check,
  vetting, session or package creation);
- ``first``: the first batch-1 inference (torch.compile compiles here);
- ``total``: measured by the parent, from spawning the process to receiving that line, so it
  includes the interpreter's own start-up.

Two baselines run the same way: ``python`` (the bare interpreter) and ``import torch`` alone,
so a backend's cost can be read against the floor every torch program pays.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from pydantic import Field

from fnnkit.bench.config import ColdStartConfig
from fnnkit.bench.planner import nothing_to_run, plan
from fnnkit.bench.records import Float, Int, Record, RunHeader, save_record
from fnnkit.bench.results import Skipped
from fnnkit.errors import BackendUnavailable
from fnnkit.paths import require_absolute
from fnnkit.spawn import python_argv, start_isolated
from fnnkit.store import find_variant_dir

MARK = "FNNKIT_COLDSTART "
PHASES = ("import", "load", "first", "total")
BASELINES = ("python", "import torch")
SCHEMA = "fnnkit.coldstart/2"  # 2: the run header, skipped rows are the plan's records

# Runs in the fresh process: imports only what the backend itself needs (no torch for ONNX Runtime / OpenVINO).
CHILD = """
import json, sys, time
started = time.perf_counter()
kind, folder, backend, threads, mark = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
out = {}
if kind == "torch":
    import torch
    out["import"] = time.perf_counter() - started
if kind == "backend":
    from fnnkit.backends import get_backend
    chosen = get_backend(backend)
    out["import"] = time.perf_counter() - started
    begun = time.perf_counter()
    predictor = chosen.load(folder, "cpu", threads)
    out["load"] = time.perf_counter() - begun
    import numpy as np
    x = np.random.default_rng(0).random((1, 784), np.float32)
    begun = time.perf_counter()
    predictor.predict(x)
    out["first"] = time.perf_counter() - begun
print(mark + json.dumps(out), flush=True)
"""


class ColdStart(Record):
    """One backend (or baseline): p50 and p90 seconds of each phase over ``repeats`` fresh processes."""

    name: str
    repeats: Int = Field(ge=1)
    p50_s: dict[str, Float]
    p90_s: dict[str, Float]


class ColdStartRun(Record):
    header: RunHeader
    folder: str  # the trained variant every backend loaded
    results: list[ColdStart]
    skipped: list[Skipped] = []


def run_once(kind: str, folder: Path | None, backend: str, threads: int, timeout_s: float = 300.0) -> dict[str, float]:
    """One fresh process, isolated as every fnnkit child is (``fnnkit.spawn``); its phases in seconds,
    and ``total`` as the parent saw it."""
    if folder is not None:
        require_absolute(folder, "cold-start folder")  # the child runs in a private folder
    argv = python_argv(CHILD, kind, str(folder or ""), backend, str(threads), MARK)
    with tempfile.TemporaryFile("w+") as err:  # a file, not a pipe: chatter on stderr can never block the child
        started = time.perf_counter()
        with start_isolated(
            argv, env_force={"OMP_NUM_THREADS": str(threads)}, stdout=subprocess.PIPE, stderr=err
        ) as child:
            try:
                for line in child.stdout:  # the result line arrives before the interpreter's teardown
                    if line.startswith(MARK):
                        total = time.perf_counter() - started
                        child.wait(timeout=timeout_s)
                        return json.loads(line[len(MARK) :]) | {"total": total}
                child.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                raise BackendUnavailable(f"cold start of {backend or kind} took more than {timeout_s:.0f} s") from None
        err.seek(0)
        last = err.read().strip().splitlines()[-1:] or ["no output"]
    raise BackendUnavailable(f"cold start of {backend or kind} failed (exit {child.returncode}): {last[0]}")


def summarize(name: str, runs: list[dict[str, float]]) -> ColdStart:
    """p50 and p90 of each phase by nearest rank, so each is an observed run: with 10 runs, p90 is the 9th fastest."""
    phases = [p for p in PHASES if p in runs[0]]

    def rank(p: str, q: float) -> float:
        return round(float(np.percentile([r[p] for r in runs], q, method="inverted_cdf")), 5)

    return ColdStart(
        name=name, repeats=len(runs), p50_s={p: rank(p, 50) for p in phases}, p90_s={p: rank(p, 90) for p in phases}
    )


def measure_cold_starts(config: ColdStartConfig, on_run=None) -> ColdStartRun:
    """Baselines first, then each backend that can start here (``plan``: on the CPU; others skipped with why)."""
    targets, skipped = plan(config.artifacts, (config.variant,), config.dataset, config.backends, ("cpu",))
    if config.backends and not targets:  # every backend asked for is skipped: baselines alone answer nothing
        nothing_to_run(skipped)
    folder = find_variant_dir(config.artifacts, config.variant, config.dataset)
    notify = on_run or (lambda name, i: None)
    header = RunHeader.new(SCHEMA, "coldstart", config)
    runs: list[tuple[str, str, str]] = [(b, "python" if b == "python" else "torch", "") for b in BASELINES]
    runs += [(t.backend.name, "backend", t.backend.name) for t in targets]
    results = []
    for label, kind, backend in runs:
        times = []
        for i in range(config.repeats):
            notify(label, i)
            times.append(run_once(kind, folder, backend, config.threads))
        results.append(summarize(label, times))
    return ColdStartRun(header=header, folder=str(folder), results=results, skipped=skipped)


def save_cold_starts(run: ColdStartRun, path: str | os.PathLike) -> Path:
    return save_record(run, path)
