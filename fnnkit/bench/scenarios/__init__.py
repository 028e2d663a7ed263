"""Load scenarios with MLPerf LoadGen: how many requests/s a backend serves under a p99 bound.

Rooms: ``config`` (what one test asks for, validated), ``sut`` (the dynamic batcher and the null
predictor), ``loadgen`` (one LoadGen run and its verdict, read from LoadGen's log), ``runs``
(in which process each run happens: a fresh one, or this one), ``search``
(the peak rate), ``runner`` (every backend, the null SUT, accuracy, the run's JSON; its PNG is
drawn by ``fnnkit.cli.plots``).
"""

from __future__ import annotations

from fnnkit.lazy import lazy_names

_WHERE = {  # name -> the module that defines it; imported on first use, as in fnnkit.bench
    "SCENARIOS": "fnnkit.bench.scenarios.config",
    "ScenarioConfig": "fnnkit.bench.scenarios.config",
    "INSTALL_HINT": "fnnkit.bench.scenarios.loadgen",
    "LoadgenMissing": "fnnkit.bench.scenarios.loadgen",
    "LoadgenResult": "fnnkit.bench.scenarios.loadgen",
    "run_loadgen": "fnnkit.bench.scenarios.loadgen",
    "NULL": "fnnkit.bench.scenarios.runner",
    "SCHEMA": "fnnkit.bench.scenarios.runner",
    "BackendScenario": "fnnkit.bench.scenarios.runner",
    "ScenarioRun": "fnnkit.bench.scenarios.runner",
    "run_one": "fnnkit.bench.scenarios.runner",
    "run_scenarios": "fnnkit.bench.scenarios.runner",
    "save_scenario_run": "fnnkit.bench.scenarios.runner",
    "FreshProcessRuns": "fnnkit.bench.scenarios.runs",
    "InProcessRuns": "fnnkit.bench.scenarios.runs",
    "find_peak": "fnnkit.bench.scenarios.search",
    "BatchingSUT": "fnnkit.bench.scenarios.sut",
    "NullPredictor": "fnnkit.bench.scenarios.sut",
}


__getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = sorted(_WHERE)
