"""A tune judge whose peak-rate surface is known: the search must find its optimum."""

from __future__ import annotations

import math
import random

from fnnkit.tune.search import Deployment, Estimate, Space, Trial, Vote

BASE = {"fast": 100_000.0, "mid": 70_000.0, "slow": 20_000.0, "inaccurate": 500_000.0}
OPTIMUM = Deployment("fast", max_batch=16, max_queue_delay_us=50, workers=2)
SHORT_S, FULL_S, VOTE_S, ESTIMATE_S = 10.0, 50.0, 3.0, 0.2


def known_peak(d: Deployment) -> float:
    """Unimodal along every knob: best at batch 16, 50 us, 2 workers, for every backend."""
    batch = 1 - 0.1 * abs(math.log2(d.max_batch) - 4)
    delay = 1 - 0.1 * abs((0, 25, 50, 100, 200, 500, 1000, 2000).index(d.max_queue_delay_us) - 2)
    workers = {1: 1.0, 2: 1.3}[d.workers]
    return BASE[d.backend] * max(batch, 0.05) * max(delay, 0.05) * workers


class KnownJudge:
    """``misleading``: the cheap estimate ranks the backends backwards (the search must not trust it)."""

    def __init__(self, jitter: float = 0.0, seed: int = 0, misleading: bool = False) -> None:
        self.calls: list[tuple[Deployment, str]] = []
        self.jitter, self.rng, self.misleading = jitter, random.Random(seed), misleading

    def estimate(self, backend: str) -> Estimate:
        return Estimate(backend, 1 / BASE[backend] if self.misleading else BASE[backend], ESTIMATE_S)

    def noisy(self, d: Deployment) -> float:
        return known_peak(d) * (1 + self.rng.uniform(-self.jitter, self.jitter))

    def peak(self, d: Deployment, fidelity: str) -> Trial:
        self.calls.append((d, fidelity))
        peak = self.noisy(d) if fidelity == "short" else known_peak(d)
        return Trial(d, peak, 0.8, SHORT_S if fidelity == "short" else FULL_S, fidelity)

    def sustains(self, d: Deployment, qps: float) -> Vote:
        self.calls.append((d, "vote"))
        return Vote(d, qps, self.noisy(d) >= qps, VOTE_S)


def space() -> Space:
    return Space.for_machine(["slow", "mid", "fast", "inaccurate"], cores=2, latency_bound_ms=1.0)


def gate(backend: str) -> str | None:
    return "accuracy 90.1% < floor 95.5%" if backend == "inaccurate" else None
