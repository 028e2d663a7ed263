"""Benchmark every backend on accuracy and speed, and say which one to deploy at each batch size.

Three kinds of run share one plan and one record: latency (``runner``), load (``scenarios``,
MLPerf LoadGen) and cold start (``coldstart``). Modules, one job each: ``records`` (the pydantic
base, the run header, the one reader and writer), ``config`` (what a latency run measures),
``planner`` (``plan``: what runs here, what is skipped and why), ``job`` (Job in, Outcome out), ``launch``
(where a job runs: ``InProcess`` | ``WorkerProcess``, whose child is ``worker``), ``measure`` (one
job: load, time, check accuracy), ``stats`` (timing and trust), ``ceiling`` (the matmul ceiling),
``runner`` (a latency run, comparisons, recommendation), ``results`` (nested rows, CSV),
``compare`` (the regression gate), ``prepare`` (fresh-clone set-up).

Names are imported on first use (PEP 562): a command's options read the configs' bounds at import, and
`fnnkit --help` imports no torch. A function named like its module (``measure``) is imported from the
module (``fnnkit.bench.measure.measure``): the package attribute of that name is the module.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {  # name -> the module that defines it
    "matmul_ceiling": "ceiling",
    "Change": "compare",
    "Comparison": "compare",
    "compare_runs": "compare",
    "DEFAULT_BATCH_SIZES": "config",
    "BenchConfig": "config",
    "ColdStartConfig": "config",
    "parse_batch_sizes": "config",
    "Job": "job",
    "Outcome": "job",
    "InProcess": "launch",
    "Launcher": "launch",
    "WorkerProcess": "launch",
    "Target": "planner",
    "plan": "planner",
    "prepare_artifacts": "prepare",
    "Record": "records",
    "RunHeader": "records",
    "SCHEMA": "results",
    "BenchRow": "results",
    "BenchRun": "results",
    "Ceiling": "results",
    "Recommendation": "results",
    "Skipped": "results",
    "load_run": "results",
    "save_run": "results",
    "write_csv": "results",
    "recommend": "runner",
    "run_bench": "runner",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'fnnkit.bench' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fnnkit.bench.{_WHERE[name]}"), name)


__all__ = sorted(_WHERE)
