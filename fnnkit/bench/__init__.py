"""Benchmark every backend on accuracy and speed, and say which one to deploy at each batch size.

Modules, one job each: ``config`` (what to measure), ``stats`` (timing and trust),
``measure`` (one backend, used by ``worker`` in its own process), ``runner`` (a whole run,
ceilings, comparisons, recommendation), ``results`` (rows, their JSON schema, CSV),
``compare`` (the regression gate), ``prepare`` (fresh-clone set-up).
"""

from __future__ import annotations

from fnnkit.bench.compare import Change, Comparison, compare_runs
from fnnkit.bench.config import DEFAULT_BATCH_SIZES, BenchConfig, parse_batch_sizes
from fnnkit.bench.measure import Job, Outcome, matmul_ceiling, measure
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
    "Job",
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
    "write_csv",
]
