"""The peak server rate that LoadGen still calls VALID, found by votes and confirmed before it is reported.

LoadGen's own FindPeakPerformance mode runs its search inside one call and logs only the
final answer; fnnkit needs every step (rate, percentiles, verdict) in the table and the JSON,
so it runs the search step by step with LoadGen's PerformanceOnly verdict as the test.

On a shared machine one run can fail because another process took the cores for a moment,
not because the rate is too high, and one can pass by luck above the peak: on a 2-core VM with
no other benchmark running, fnnkit's SUT with ONNX Runtime at 150k q/s measured INVALID and
VALID (p99 5.4 / 1.8 ms) in runs a few seconds apart, and an independent LoadGen harness at
120k q/s VALID then INVALID (1.3 / 6.7 ms), and at 160k INVALID then VALID (2.9 / 1.4 ms).
So a rate's verdict is a majority vote of up to ``VOTE_RUNS`` (3) runs,
stopping once two agree. Both lopsided rules were measured to fail: "pass on one VALID run"
let one lucky run at 225k lift the search 35% above the rate it could confirm (it then could
not confirm any), and "fail on two INVALID runs, pass on one VALID" capped a round 30% below
the peak.
A run that completed under 80% of the offered
rate is decided at once: the queue grew all run long, which no stall of a moment explains.
A run that failed while other processes kept the cores busy (``contended``) does not count:
it is run again, once per run.
Rates move geometrically (double until a rate fails, then bisect, halve while nothing has
passed); the peak is known within ``precision`` in a few votes. Once bracketed, the failing
bound is voted on once more: a first rate that failed two runs by chance (110.8k, p99 2.4 /
2.9 ms, where the same machine sustained 155k minutes earlier) otherwise capped the whole
search; when it passes, the search goes on between it and the next rate above it that failed
(doubling only when none did: a search that doubled from a re-voted 201.6k to 403k, past a
219.9k that had failed, ended at 239.8k, 21% above a round at 198k). The rate found is then run
``confirm`` more times: it is reported only when most of its runs are VALID. Otherwise the
search steps down by one precision notch (at most ``STEP_DOWNS`` times) and confirms again,
and finally says it could not confirm a peak rather than report one. It says so at once, without
confirming, when most of the search's runs were contended: with one core kept busy by another
process throughout, a search confirmed 46k q/s where the quiet machine sustains about 150k, a
number about the neighbour rather than the system.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

STEP_DOWNS = 2  # notches below an unconfirmed peak that are tried before giving up
VOTE_RUNS = 3  # a rate's vote: the majority of up to this many runs (stops once it is decided)
RETESTS = 1  # once bracketed, the failing bound is voted on again this many times before it is believed
RERUNS_IF_CONTENDED = 1  # a failed run while other processes were busy is run again once (a busy machine stays busy)
CONFIRMED, NO_RATE, UNCONFIRMED = "confirmed", "no rate met the bound", "could not confirm a peak"


class Verdict(Protocol):
    @property
    def valid(self) -> bool: ...

    @property
    def overloaded(self) -> bool: ...  # far above capacity (completed < 80% of the offered rate): no second vote

    @property
    def contended(self) -> bool: ...  # other processes kept the cores busy meanwhile: its failure is not evidence


@dataclass
class PeakSearch:
    """What the search found: the peak (None unless confirmed), why, and every run in order."""

    peak_qps: float | None
    status: str  # CONFIRMED | NO_RATE | UNCONFIRMED
    steps: list[tuple[float, Verdict]] = field(default_factory=list)
    failed_above: float | None = None  # lowest rate whose vote failed: the peak lies below it

    def at(self, qps: float) -> list[Verdict]:
        """Every run at ``qps``: the confidence behind a reported peak."""
        return [r for q, r in self.steps if q == qps]


def find_peak(
    measure: Callable[[float], Verdict],
    start: float,
    min_qps: float,
    max_qps: float,
    precision: float,
    max_steps: int,
    confirm: int = 2,
) -> PeakSearch:
    """Search from ``start``: at most ``max_steps`` LoadGen runs to find a rate, then up to
    ``(1 + confirm) * (STEP_DOWNS + 1)`` more to confirm it."""
    search = PeakSearch(None, NO_RATE)

    def run(qps: float) -> bool:
        result = measure(qps)
        search.steps.append((qps, result))
        return result.valid

    def counted_run(qps: float) -> Verdict:
        """One run whose failure says something about the rate: a failure while other processes kept
        the cores busy is run again (at most ``RERUNS_IF_CONTENDED`` times per vote)."""
        for attempt in range(RERUNS_IF_CONTENDED + 1):
            run(qps)
            result = search.steps[-1][1]
            if result.valid or not result.contended or attempt == RERUNS_IF_CONTENDED:
                return result
            if len(search.steps) >= max_steps:
                break
        return result

    def vote(qps: float) -> bool:
        """The majority of up to VOTE_RUNS runs, stopping once decided; an overloaded run fails it at once."""
        passed = failed = 0
        while 2 * max(passed, failed) <= VOTE_RUNS and len(search.steps) < max_steps:
            result = counted_run(qps)
            if result.overloaded:
                return False
            passed, failed = passed + result.valid, failed + (not result.valid)
        return 2 * passed > VOTE_RUNS

    retests = RETESTS
    valid: float | None = None  # highest rate whose vote passed
    invalid: float | None = None  # lowest rate whose vote failed
    failed: list[float] = []  # every rate whose vote failed: above a re-voted bound, the next one still bounds
    qps = min(max(start, min_qps), max_qps)
    while len(search.steps) < max_steps:
        if vote(qps):
            valid = qps if valid is None else max(valid, qps)
        else:
            failed.append(qps)
            invalid = qps if invalid is None else min(invalid, qps)
        if invalid is None:  # nothing failed yet: go up fast
            if qps >= max_qps:
                break
            qps = min(qps * 2, max_qps)
        elif valid is None:  # nothing passed yet: go down (the failure was a repeated one)
            if qps <= min_qps * (1 + precision):  # at the floor already (20.06 is 20): do not run it again
                break
            qps = max(qps / 2, min_qps)
        else:
            if invalid / valid - 1 <= precision:
                if not retests or len(search.steps) >= max_steps or not vote(invalid):
                    break
                retests -= 1  # the failing bound passed its second vote: that failure was a moment, not the rate
                valid = invalid
                invalid = min((q for q in failed if q > valid), default=None)  # not re-voted: still the rate's bound
                if invalid is None:
                    qps = min(valid * 2, max_qps)
                    continue
                if invalid / valid - 1 <= precision:
                    break
            qps = math.sqrt(valid * invalid)
    search.failed_above = invalid
    if valid is None:
        return search
    search.status = UNCONFIRMED
    if 2 * sum(r.contended for _, r in search.steps) > len(search.steps):
        return search  # other processes held the cores through most runs: what was found is theirs, not the rate's
    notch = 1 + 2 * precision
    for notches in range(STEP_DOWNS + 1):
        for _ in range(confirm + (notches > 0)):  # a stepped-down rate has no run yet: one more
            run(valid)
        runs = search.at(valid)  # the search's own run(s) at this rate count in the majority
        if 2 * sum(r.valid for r in runs) > len(runs):
            search.peak_qps, search.status = valid, CONFIRMED
            return search
        valid = valid / notch
        if valid < min_qps:
            break
    return search
