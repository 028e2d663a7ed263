"""Load scenarios with MLPerf LoadGen: how many requests/s a backend serves under a p99 bound.

Rooms: ``config`` (what one test asks for, validated), ``sut`` (the dynamic batcher and the null
predictor), ``loadgen`` (one LoadGen run and its verdict, read from LoadGen's log), ``search``
(the peak rate), ``runner`` (every backend, the null SUT, accuracy, the run's JSON; its PNG is
drawn by ``fnnkit.cli.plots``).
"""

from __future__ import annotations

from fnnkit.bench.scenarios.config import SCENARIOS, ScenarioConfig
from fnnkit.bench.scenarios.loadgen import INSTALL_HINT, LoadgenMissing, LoadgenResult, loadgen, run_loadgen
from fnnkit.bench.scenarios.runner import (
    NULL,
    SCHEMA,
    BackendScenario,
    ScenarioRun,
    run_one,
    run_scenarios,
    save_scenario_run,
)
from fnnkit.bench.scenarios.search import find_peak
from fnnkit.bench.scenarios.sut import BatchingSUT, NullPredictor

__all__ = [
    "INSTALL_HINT",
    "NULL",
    "SCENARIOS",
    "SCHEMA",
    "BackendScenario",
    "BatchingSUT",
    "LoadgenMissing",
    "LoadgenResult",
    "NullPredictor",
    "ScenarioConfig",
    "ScenarioRun",
    "find_peak",
    "loadgen",
    "run_loadgen",
    "run_one",
    "run_scenarios",
    "save_scenario_run",
]
