"""The peak server rate that LoadGen still calls VALID: double until INVALID, then bisect.

LoadGen's own FindPeakPerformance mode runs its search inside one call and logs only the
final answer; fnnkit needs every step (rate, percentiles, verdict) in the table and the JSON,
so it runs the same kind of search step by step with LoadGen's PerformanceOnly verdict as
the test. Rates move geometrically: the peak is known within ``precision`` in a few steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol


class Verdict(Protocol):
    @property
    def valid(self) -> bool: ...


def find_peak(
    measure: Callable[[float], Verdict],
    start: float,
    min_qps: float,
    max_qps: float,
    precision: float,
    max_steps: int,
) -> tuple[float | None, list[tuple[float, Verdict]]]:
    """(highest VALID rate or None when even ``min_qps`` fails, every (rate, result) tried in order)."""
    steps: list[tuple[float, Verdict]] = []
    valid: float | None = None  # highest rate that passed
    invalid: float | None = None  # lowest rate that failed
    qps = min(max(start, min_qps), max_qps)
    while len(steps) < max_steps:
        result = measure(qps)
        steps.append((qps, result))
        if result.valid:
            valid = qps if valid is None else max(valid, qps)
        else:
            invalid = qps if invalid is None else min(invalid, qps)
        if invalid is None:  # nothing failed yet: go up fast
            if qps >= max_qps:
                break
            qps = min(qps * 2, max_qps)
        elif valid is None:  # nothing passed yet: go down fast
            if qps <= min_qps * (1 + precision):  # at the floor already (20.06 is 20): do not run it twice
                break
            qps = max(qps / 4, min_qps)
        else:
            if invalid / valid - 1 <= precision:
                break
            qps = math.sqrt(valid * invalid)
    return valid, steps
