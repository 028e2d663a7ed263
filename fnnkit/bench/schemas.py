"""The JSON Schemas of every bench config and result file, generated from their pydantic models.

``docs/bench-schemas.md`` is ``page()``, written by ``scripts/bench_schemas.py``; a test fails when
the two differ, so the published schemas are the code's.
"""

from __future__ import annotations

import json


def models() -> dict:
    """Title -> model, in the order the page shows them."""
    from fnnkit.bench.coldstart import ColdStartRun
    from fnnkit.bench.config import BenchConfig, ColdStartConfig
    from fnnkit.bench.results import BenchRun
    from fnnkit.bench.scenarios.config import ScenarioConfig
    from fnnkit.bench.scenarios.runner import ScenarioRun

    return {
        "BenchConfig (`fnnkit bench latency`)": BenchConfig,
        "ScenarioConfig (`fnnkit bench load`)": ScenarioConfig,
        "ColdStartConfig (`fnnkit bench coldstart`)": ColdStartConfig,
        "BenchRun: a latency result file (`artifacts/bench/<run-id>.json`)": BenchRun,
        "ScenarioRun: a load result file (`--json` of `fnnkit bench load`)": ScenarioRun,
        "ColdStartRun: a cold-start result file (`--json` of `fnnkit bench coldstart`)": ColdStartRun,
    }


def page() -> str:
    parts = [
        "# Bench configs and result files: JSON Schemas",
        "",
        "Generated from the pydantic models by `python scripts/bench_schemas.py` (a test fails when this page "
        "and the code differ). Every model is frozen and refuses unknown keys, NaN and infinity; a bound is "
        "stated once, on its field, and the CLI reads its option bounds from it. Every result file opens with "
        "the same `header` (`RunHeader`).",
    ]
    for title, model in models().items():
        schema = json.dumps(model.model_json_schema(), indent=2, sort_keys=True)
        parts += ["", f"## {title}", "", "```json", schema, "```"]
    return "\n".join(parts) + "\n"
