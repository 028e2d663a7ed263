"""Load scenarios with MLPerf LoadGen: how many requests/s a backend serves under a p99 bound.

Rooms: ``config`` (what one test asks for, validated), ``sut`` (the dynamic batcher and the null
predictor), ``loadgen`` (one LoadGen run and its verdict, read from LoadGen's log), ``search``
(the peak rate), ``runner`` (every backend, the null SUT, accuracy, the run's JSON; its PNG is
drawn by ``fnnkit.cli.plots``).
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {  # name -> the module that defines it; imported on first use, as in fnnkit.bench
    "SCENARIOS": "config",
    "ScenarioConfig": "config",
    "INSTALL_HINT": "loadgen",
    "LoadgenMissing": "loadgen",
    "LoadgenResult": "loadgen",
    "run_loadgen": "loadgen",
    "NULL": "runner",
    "SCHEMA": "runner",
    "BackendScenario": "runner",
    "ScenarioRun": "runner",
    "run_one": "runner",
    "run_scenarios": "runner",
    "save_scenario_run": "runner",
    "find_peak": "search",
    "BatchingSUT": "sut",
    "NullPredictor": "sut",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'fnnkit.bench.scenarios' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fnnkit.bench.scenarios.{_WHERE[name]}"), name)


__all__ = sorted(_WHERE)
