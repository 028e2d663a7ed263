"""The Pareto frontier of a tune: deployments no other one beats on accuracy, p99 and peak rate at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fnnkit.tune.search import Trial


@dataclass(frozen=True)
class Point:
    trial: Trial
    accuracy: float  # percent, the backend's test accuracy

    @property
    def peak_qps(self) -> float:
        return self.trial.score

    @property
    def p99_ms(self) -> float:
        return self.trial.p99_ms if self.trial.p99_ms is not None else float("inf")

    def dominates(self, other: Point) -> bool:
        """At least as good on all three, better on one."""
        at_least = self.accuracy >= other.accuracy and self.p99_ms <= other.p99_ms and self.peak_qps >= other.peak_qps
        better = self.accuracy > other.accuracy or self.p99_ms < other.p99_ms or self.peak_qps > other.peak_qps
        return at_least and better


def frontier(trials: Sequence[Trial], accuracy: Mapping[str, float]) -> list[Point]:
    """Each deployment's best measurement (full runs preferred), then those nothing dominates, fastest first."""
    latest: dict = {}
    for trial in trials:  # a full-length re-measurement replaces the short one it confirms
        if trial.peak_qps is None:
            continue
        known = latest.get(trial.deployment)
        if known is None or trial.fidelity == "full" or known.fidelity != "full":
            latest[trial.deployment] = trial
    points = [Point(t, accuracy[t.deployment.backend]) for t in latest.values()]
    kept = [p for p in points if not any(q.dominates(p) for q in points)]
    return sorted(kept, key=lambda p: p.peak_qps, reverse=True)
