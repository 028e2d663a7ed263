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

from fnnkit.lazy import lazy_names

_WHERE = {  # name -> the module that defines it
    "matmul_ceiling": "fnnkit.bench.ceiling",
    "Change": "fnnkit.bench.compare",
    "Comparison": "fnnkit.bench.compare",
    "compare_runs": "fnnkit.bench.compare",
    "DEFAULT_BATCH_SIZES": "fnnkit.bench.config",
    "BenchConfig": "fnnkit.bench.config",
    "ColdStartConfig": "fnnkit.bench.config",
    "parse_batch_sizes": "fnnkit.bench.config",
    "Job": "fnnkit.bench.job",
    "Outcome": "fnnkit.bench.job",
    "InProcess": "fnnkit.bench.launch",
    "Launcher": "fnnkit.bench.launch",
    "WorkerProcess": "fnnkit.bench.launch",
    "Target": "fnnkit.bench.planner",
    "plan": "fnnkit.bench.planner",
    "prepare_artifacts": "fnnkit.bench.prepare",
    "Record": "fnnkit.bench.records",
    "RunHeader": "fnnkit.bench.records",
    "SCHEMA": "fnnkit.bench.results",
    "BenchRow": "fnnkit.bench.results",
    "BenchRun": "fnnkit.bench.results",
    "Ceiling": "fnnkit.bench.results",
    "Recommendation": "fnnkit.bench.results",
    "Skipped": "fnnkit.bench.results",
    "load_run": "fnnkit.bench.results",
    "save_run": "fnnkit.bench.results",
    "write_csv": "fnnkit.bench.results",
    "recommend": "fnnkit.bench.runner",
    "run_bench": "fnnkit.bench.runner",
}


__getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = sorted(_WHERE)
