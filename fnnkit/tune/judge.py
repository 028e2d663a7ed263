"""The judge of a tune: a LoadGen server-scenario peak search for one deployment, short or full length.

Short runs rank candidates (2 s runs, one confirmation, 10% precision); full runs are what
``fnnkit bench load --find-peak`` does by default, so the tune's reported peak is the figure an
independent bench run re-measures. Predictors are loaded once per backend and reused: the batching
knobs live in the batcher, not in the model.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from fnnkit.backends import Predictor, get_backend
from fnnkit.bench.scenarios.config import ScenarioConfig
from fnnkit.bench.scenarios.runner import run_one
from fnnkit.tune.search import Deployment, Fidelity, Trial

SHORT = {"min_duration_ms": 2000, "confirm_runs": 1, "peak_precision": 0.10, "max_steps": 10}


class LoadgenJudge:
    """Measures deployments of one trained variant; every LoadGen log lands under ``log_root``."""

    def __init__(self, folder: Path, inputs: Any, base: ScenarioConfig, device: str, log_root: Path) -> None:
        self.folder, self.inputs, self.base, self.device, self.log_root = folder, inputs, base, device, log_root
        self.predictors: dict[str, Predictor] = {}
        self.runs = 0

    def config(self, deployment: Deployment, fidelity: Fidelity) -> ScenarioConfig:
        knobs = {
            "max_batch": deployment.max_batch,
            "max_queue_delay_us": float(deployment.max_queue_delay_us),
            "workers": deployment.workers,
            "find_peak": True,
            "scenario": "server",
        }
        return replace(self.base, **knobs, **(SHORT if fidelity == "short" else {}))

    def predictor(self, backend: str) -> Predictor:
        if backend not in self.predictors:
            predictor = get_backend(backend).load(self.folder, self.device, self.base.threads)
            predictor.warmup(1)
            self.predictors[backend] = predictor
        return self.predictors[backend]

    def __call__(self, deployment: Deployment, fidelity: Fidelity) -> Trial:
        config = self.config(deployment, fidelity)
        predictor = self.predictor(deployment.backend)
        predictor.warmup(deployment.max_batch)
        self.runs += 1
        logs = self.log_root / f"{self.runs:03d}-{deployment.backend}-b{deployment.max_batch}"
        started = time.perf_counter()
        found = run_one(predictor, self.inputs, None, config, logs, lambda backend, result: None, "")
        seconds = time.perf_counter() - started
        p99 = found.final.p() if found.peak_qps is not None else None  # ms
        return Trial(deployment, found.peak_qps, p99, seconds, fidelity)
