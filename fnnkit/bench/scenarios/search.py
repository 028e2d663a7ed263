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
``confirm`` more times: it is reported only when most of its runs are VALID. Otherwise it counts
as a failed vote and the search goes on below it, bisecting from the highest rate that passed
(a round passed 272k twice early on, then the machine held about 220k: stepping down two 10%
notches found nothing and no peak was reported, where an independent harness then confirmed
220k), within a budget of ``(1 + confirm) * (STEP_DOWNS + 1)`` runs beyond the search's own; when
that is spent it says it could not confirm a peak rather than report one. It says so at once, without
confirming, when most of the search's runs were contended: with one core kept busy by another
process throughout, a search confirmed 46k q/s where the quiet machine sustains about 150k, a
number about the neighbour rather than the system.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

STEP_DOWNS = 2  # room for this many failed confirmations (and the search below them) before giving up
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


def max_runs(max_steps: int, confirm: int) -> int:
    """The most LoadGen runs one search makes: ``max_steps`` to find a rate, then its confirmations and the
    searches below the ones that did not hold."""
    return max_steps + (1 + confirm) * (STEP_DOWNS + 1)


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
    ``(1 + confirm) * (STEP_DOWNS + 1)`` more to confirm it, or to search below it when it did not hold."""
    search = PeakSearch(None, NO_RATE)
    limit = max_steps  # the runs the current search phase may reach; a search resumed after a failed confirmation
    budget = max_runs(max_steps, confirm)  # may use the whole budget but the confirmation's runs

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
            if len(search.steps) >= limit:
                break
        return result

    def vote(qps: float) -> bool:
        """The majority of up to VOTE_RUNS runs, stopping once decided; an overloaded run fails it at once."""
        passed = failed = 0
        while 2 * max(passed, failed) <= VOTE_RUNS and len(search.steps) < limit:
            result = counted_run(qps)
            if result.overloaded:
                return False
            passed, failed = passed + result.valid, failed + (not result.valid)
        return 2 * passed > VOTE_RUNS

    verdicts: dict[float, bool] = {}  # each rate's latest vote (a re-vote or a failed confirmation overrules one)
    retests = RETESTS

    def bounds() -> tuple[float | None, float | None]:
        """The highest rate that passed, and the lowest above it that failed: the peak lies between them."""
        valid = max((q for q, ok in verdicts.items() if ok), default=None)
        above = [q for q, ok in verdicts.items() if not ok and (valid is None or q > valid)]
        return valid, min(above, default=None)

    def bracket(qps: float, runs_limit: int) -> None:
        """Vote and move until the bounds are within ``precision`` (or ``runs_limit`` runs are spent)."""
        nonlocal retests, limit
        limit = runs_limit
        while len(search.steps) < limit:
            verdicts[qps] = vote(qps)
            valid, invalid = bounds()
            if invalid is None:  # nothing failed above: go up fast
                if qps >= max_qps:
                    return
                qps = min(qps * 2, max_qps)
            elif valid is None:  # nothing passed yet: go down (the failure was a repeated one)
                if qps <= min_qps * (1 + precision):  # at the floor already (20.06 is 20): do not run it again
                    return
                qps = max(qps / 2, min_qps)
            elif invalid / valid - 1 > precision:
                qps = math.sqrt(valid * invalid)
            elif retests and len(search.steps) < limit:
                retests -= 1  # the failing bound is voted on once more before it is believed
                verdicts[invalid] = vote(invalid)
                if not verdicts[invalid]:
                    return
                valid, invalid = bounds()  # it passed: that failure was a moment, not the rate
                if invalid is not None and invalid / valid - 1 <= precision:
                    return
                qps = min(valid * 2, max_qps) if invalid is None else math.sqrt(valid * invalid)
            else:
                return

    bracket(min(max(start, min_qps), max_qps), max_steps)
    while True:
        valid, search.failed_above = bounds()
        if valid is None:
            return search
        search.status = UNCONFIRMED
        if 2 * sum(r.contended for _, r in search.steps) > len(search.steps):
            return search  # other processes held the cores through most runs: what was found is theirs, not the rate's
        if len(search.steps) + confirm > budget:
            return search
        for _ in range(confirm):
            run(valid)
        runs = search.at(valid)  # the search's own runs at this rate count in the majority
        if 2 * sum(r.valid for r in runs) > len(runs):
            search.peak_qps, search.status = valid, CONFIRMED
            return search
        verdicts[valid] = False  # it did not hold: a failed vote, and the search goes on below it
        valid, invalid = bounds()
        if valid is None or invalid / valid - 1 > precision:
            below = max(invalid / 2, min_qps) if valid is None else math.sqrt(valid * invalid)
            if valid is None and invalid <= min_qps * (1 + precision):
                return search  # the floor itself did not hold
            bracket(below, budget - confirm)
