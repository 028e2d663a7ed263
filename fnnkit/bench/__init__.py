"""Benchmark every backend on accuracy and speed, and say which one to deploy at each batch size.

Modules, one job each: ``config`` (what to measure), ``job`` (Job in, Outcome out, one JSON
codec), ``launch`` (where a job runs: ``InProcess`` | ``WorkerProcess``, whose child is
``worker``), ``measure`` (one job: load, time, check accuracy), ``stats`` (timing and trust),
``ceiling`` (the matmul ceiling), ``runner`` (a whole run, comparisons, recommendation),
``results`` (rows, their JSON schema, CSV), ``compare`` (the regression gate), ``prepare``
(fresh-clone set-up), ``coldstart`` (fresh-process start-up), ``scenarios`` (LoadGen load scenarios).
"""

from __future__ import annotations

from fnnkit.bench.ceiling import matmul_ceiling
from fnnkit.bench.compare import Change, Comparison, compare_runs
from fnnkit.bench.config import DEFAULT_BATCH_SIZES, BenchConfig, parse_batch_sizes
from fnnkit.bench.job import Job, Outcome
from fnnkit.bench.launch import InProcess, Launcher, WorkerProcess
from fnnkit.bench.measure import measure
from fnnkit.bench.prepare import prepare_artifacts
from fnnkit.bench.results import (
    SCHEMA,
    BenchRow,
    BenchRun,
    Ceiling,
    Recommendation,
    Skipped,
    load_run,
    save_run,
    write_csv,
)
from fnnkit.bench.runner import missing_artifacts, recommend, run_bench

__all__ = [
    "DEFAULT_BATCH_SIZES",
    "SCHEMA",
    "BenchConfig",
    "BenchRow",
    "BenchRun",
    "Ceiling",
    "Change",
    "Comparison",
    "InProcess",
    "Job",
    "Launcher",
    "Outcome",
    "Recommendation",
    "Skipped",
    "compare_runs",
    "load_run",
    "matmul_ceiling",
    "measure",
    "missing_artifacts",
    "parse_batch_sizes",
    "prepare_artifacts",
    "recommend",
    "run_bench",
    "save_run",
    "WorkerProcess",
    "write_csv",
]
