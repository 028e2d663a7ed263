"""A tune judge whose peak-rate surface is known: the search must find its optimum."""

from __future__ import annotations

import json
import math
import random

from fnnkit.tune.search import Deployment, Estimate, Space, Trial, Vote, tune

BASE = {"fast": 100_000.0, "mid": 70_000.0, "slow": 20_000.0, "inaccurate": 500_000.0}
OPTIMUM = Deployment("fast", max_batch=16, max_queue_delay_us=50, workers=2)
SHORT_S, FULL_S, VOTE_S, ESTIMATE_S = 10.0, 25.0, 3.0, 0.2


def known_peak(d: Deployment) -> float:
    """Unimodal along every knob: best at batch 16, 50 us, 2 workers, for every backend."""
    batch = 1 - 0.1 * abs(math.log2(d.max_batch) - 4)
    delay = 1 - 0.1 * abs((0, 25, 50, 100, 200, 500, 1000, 2000).index(d.max_queue_delay_us) - 2)
    workers = {1: 1.0, 2: 1.3}[d.workers]
    return BASE[d.backend] * max(batch, 0.05) * max(delay, 0.05) * workers


class KnownJudge:
    """``misleading``: the cheap estimate ranks the backends backwards (the search must not trust it)."""

    def __init__(
        self, jitter: float = 0.0, seed: int = 0, scale: dict[str, float] | None = None, misleading: bool = False
    ) -> None:
        self.calls: list[tuple[Deployment, str]] = []
        self.jitter, self.rng, self.misleading = jitter, random.Random(seed), misleading
        self.scale = scale or {}  # backend -> factor on its known peaks: another machine, another release

    def estimate(self, backend: str) -> Estimate:
        speed = BASE[backend] * self.scale.get(backend, 1.0)
        return Estimate(backend, 1 / speed if self.misleading else speed, ESTIMATE_S)

    def known(self, d: Deployment) -> float:
        return known_peak(d) * self.scale.get(d.backend, 1.0)

    def noisy(self, d: Deployment) -> float:
        return self.known(d) * (1 + self.rng.uniform(-self.jitter, self.jitter))

    def peak(self, d: Deployment, fidelity: str, seconds_left: float | None = None) -> Trial:
        self.calls.append((d, fidelity))
        cost = self.cost(d, fidelity)
        if seconds_left is not None and cost > seconds_left:  # the real judge starts no run that would overrun
            return Trial(d, None, None, seconds_left * 0.9, fidelity, cut=True)
        peak = self.noisy(d) if fidelity == "short" else self.known(d)
        return Trial(d, peak, 0.8, cost, fidelity)

    def cost(self, d: Deployment, fidelity: str) -> float:
        return SHORT_S if fidelity == "short" else FULL_S

    def sustains(self, d: Deployment, qps: float) -> Vote:
        self.calls.append((d, "vote"))
        return Vote(d, qps, self.noisy(d) >= qps, VOTE_S)


def space() -> Space:
    return Space.for_machine(["slow", "mid", "fast", "inaccurate"], cores=2, latency_bound_ms=1.0)


def gate(backend: str) -> str | None:
    return "accuracy 90.1% < floor 95.5%" if backend == "inaccurate" else None


CARD = {"variant": {"name": "C"}, "dataset": {"name": "mnist"}}
ACCURACY = {"slow": 97.0, "mid": 96.5, "fast": 96.0, "inaccurate": 90.1}


def tune_record(
    judge: KnownJudge | None = None, budget: float = 1500, bound_ms: float = 1.0, load: float = 0.1
) -> dict:
    """A whole tune record, as `fnnkit tune` writes it (JSON round trip), from a search over the known surface."""
    from fnnkit.tune.run import TuneConfig, record

    result = tune(space(), judge or KnownJudge(), budget, gate=gate)
    made = record(TuneConfig(latency_bound_ms=bound_ms), CARD, result, ACCURACY, 12.0, load)
    return json.loads(json.dumps(made))
