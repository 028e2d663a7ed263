"""One tune of one trained variant: which backends may run, their accuracy, the search, the record.

Backends are gated before anything is timed: one that cannot run on this device, whose answers
depend on their batch neighbours (it could not be served), whose export is missing, or whose
accuracy on the test set — measured here, through the same Predictor that will be timed — is
below the floor, is dropped with its reason.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from fnnkit.backends import resolve_backends
from fnnkit.bench.records import RunHeader
from fnnkit.bench.scenarios.config import ScenarioConfig
from fnnkit.capabilities import cpu_capabilities
from fnnkit.data import load_test_set
from fnnkit.env import usable_cpus
from fnnkit.store import read_model_card
from fnnkit.tune.config import TuneConfig
from fnnkit.tune.frontier import frontier
from fnnkit.tune.judge import LoadgenJudge
from fnnkit.tune.record import SCHEMA, TuneRecord
from fnnkit.tune.search import Space, TuneResult, tune


def run_tune(config: TuneConfig, folder: Path, log_root: Path, data_dir: str | None = None) -> dict:
    """Gate, search, and the record of it all (a JSON-ready dict)."""
    card = read_model_card(folder)
    inputs, labels = load_test_set(card, data_dir)
    base = ScenarioConfig(latency_bound_ms=config.latency_bound_ms, threads=config.threads)
    judge = LoadgenJudge(folder, inputs, base, config.device, log_root)
    dropped: dict[str, str] = {}
    accuracy: dict[str, float] = {}
    for backend in resolve_backends(config.backends):
        reason = _unfit(backend, folder, config.device)
        if reason is None:
            accuracy[backend.name] = _accuracy(judge.predictor(backend.name), inputs, labels)
            floor = config.min_accuracy
            if floor is not None and accuracy[backend.name] < floor:
                reason = f"accuracy {accuracy[backend.name]:.2f}% is below --min-accuracy {floor:g}%"
        if reason:
            dropped[backend.name] = reason
    kept = [name for name in accuracy if name not in dropped]
    started = time.time()
    space = Space.for_machine(kept, usable_cpus(), config.latency_bound_ms)
    result = tune(space, judge, config.budget_s, full_reserve_s=judge.full_search_worst_s())
    result.dropped.update(dropped)
    return record(config, card, result, accuracy, time.time() - started, judge.others_cores)


def _unfit(backend: Any, folder: Path, device: str) -> str | None:
    ok, why = backend.available(device)
    if not ok:
        return why
    if not backend.batch_invariant:
        return "its answer to a sample depends on the batch it is in: it cannot be served under dynamic batching"
    return backend.missing(folder, device)


def _accuracy(predictor: Any, inputs: Any, labels: Any) -> float:
    logits = predictor.predict(np.asarray(inputs, dtype=np.float32))
    return round(100.0 * float((logits.argmax(axis=1) == np.asarray(labels)).mean()), 2)


def record(config: TuneConfig, card: dict, result: TuneResult, accuracy: dict, wall_s: float, load: float) -> dict:
    """Everything a later reader needs: the machine (a tune holds for it only), the space, every measurement;
    validated by ``TuneRecord``, the model ``--compare`` reads an earlier record back by."""
    caps = cpu_capabilities()
    points = frontier(result.trials, accuracy)
    made = TuneRecord.model_validate({
        **RunHeader.new(SCHEMA, "tune", config).model_dump(mode="json"),
        "config": config,
        "machine": {"cores": usable_cpus(), "flags": sorted(caps.simd_flags()), "others_cores_max": round(load, 3)},
        "variant": card["variant"]["name"],
        "dataset": card["dataset"]["name"],
        "accuracy": accuracy,
        "dropped": result.dropped,
        "estimates": {e.backend: round(e.samples_per_s) for e in result.estimates},
        "outvoted": result.outvoted,
        "space": {**asdict(result.space), "size": result.space.size, "covered": result.covered},
        "budget_s": config.budget_s,
        "spent_s": round(result.spent_s, 1),
        "wall_s": round(wall_s, 1),
        "out_of_budget": result.out_of_budget,
        "trials": [asdict(t) for t in result.trials],
        "votes": [asdict(v) for v in result.votes],
        "frontier": [asdict(p.trial) | {"accuracy": p.accuracy} for p in points],
        "pick": asdict(result.pick) if result.pick else None,
        "runner_up": asdict(result.runner_up) if result.runner_up else None,
        "margin": result.margin,
        "margin_fidelity": result.margin_fidelity,
    })  # fmt: skip
    return made.model_dump(mode="json")
