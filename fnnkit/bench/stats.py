"""Timing one call many times, and the statistics that say whether the result can be trusted.

Each call is timed on its own (perf_counter_ns on the CPU; CUDA events on the GPU), so the
distribution is real: median, p90, p99 and the spread (IQR / median) come from the calls
themselves, not from averages of loops. Timing stops once the estimate is stable (the
medians of the four quarters of the samples agree) after a minimum time, or at a budget.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PERCENTILES = (0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 100)  # kept per row for distribution plots


@dataclass(frozen=True)
class LatencyStats:
    samples: int
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    min_us: float
    spread: float  # (p75 - p25) / p50: how wide the middle half is, relative to the median
    stable: bool  # the four quarters' medians agreed within the configured tolerance
    seconds: float  # wall time spent timing
    distribution_us: dict[str, float]  # PERCENTILES -> microseconds

    @classmethod
    def from_ns(cls, samples_ns: np.ndarray | list[int], stable: bool = True, seconds: float = 0.0) -> LatencyStats:
        us = np.asarray(samples_ns, dtype=np.float64) / 1e3
        if us.size == 0:
            raise ValueError("no samples to summarise")
        points = np.percentile(us, PERCENTILES)
        q = dict(zip(PERCENTILES, points.tolist(), strict=True))
        return cls(
            samples=int(us.size),
            p50_us=q[50],
            p90_us=q[90],
            p99_us=q[99],
            mean_us=float(us.mean()),
            min_us=q[0],
            spread=(q[75] - q[25]) / q[50] if q[50] > 0 else 0.0,
            stable=stable,
            seconds=seconds,
            distribution_us={f"p{p}": round(v, 4) for p, v in q.items()},
        )


def quarter_drift(samples: np.ndarray | list[int]) -> float:
    """Largest difference between the medians of the four consecutive quarters, relative to the median.

    Catches what one median hides: a run that got slower half-way (another process woke up,
    the CPU clocked down) drifts even when its overall spread looks fine.
    """
    data = np.asarray(samples, dtype=np.float64)
    if data.size < 8:
        return float("inf")
    medians = [np.median(part) for part in np.array_split(data, 4)]
    centre = float(np.median(data))
    return (max(medians) - min(medians)) / centre if centre > 0 else 0.0


# A timer runs one call and returns its duration in nanoseconds.
Timer = Callable[[Callable[[], object]], int]


def cpu_timer(call: Callable[[], object]) -> int:
    started = time.perf_counter_ns()
    call()
    return time.perf_counter_ns() - started


def cuda_timer() -> Timer:
    """CUDA events around the call, after the device is idle: GPU time, not launch time."""
    import torch

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def timer(call: Callable[[], object]) -> int:
        torch.cuda.synchronize()
        start.record()
        call()
        end.record()
        end.synchronize()
        return int(start.elapsed_time(end) * 1e6)

    return timer


TIMERS: dict[str, Callable[[], Timer]] = {"cpu": lambda: cpu_timer, "cuda": cuda_timer}


def time_calls(
    call: Callable[[], object],
    timer: Timer,
    *,
    min_time_s: float,
    max_time_s: float,
    stability: float,
    min_samples: int = 20,
) -> tuple[np.ndarray, bool, float]:
    """Time ``call`` until stable after ``min_time_s``, or until ``max_time_s``; returns (ns, stable, seconds).

    The garbage collector is paused while timing: a collection inside one call is noise the
    model did not cause.
    """
    samples: list[int] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    started = time.perf_counter()
    next_check = started + min_time_s
    stable = False
    try:
        while True:
            samples.append(timer(call))
            now = time.perf_counter()
            if now < next_check or len(samples) < min_samples:
                continue
            stable = bool(quarter_drift(samples) <= stability)
            if stable or now - started >= max_time_s:
                break
            next_check = now + min_time_s / 4  # re-check a few times per min_time, not per call
    finally:
        if gc_was_enabled:
            gc.enable()
    return np.asarray(samples, dtype=np.int64), stable, time.perf_counter() - started


CONTENDED_CORES = 0.25  # cores other processes used, above which a measurement is flagged as contended


class CpuLoad:
    """How many cores *other* processes used while we measured: high means the numbers are suspect.

    System-wide busy time (including steal, on a VM) minus this process's own CPU time,
    divided by wall time.
    """

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._process = psutil.Process()
        self.others_cores = 0.0

    def __enter__(self) -> CpuLoad:
        self._system = self._busy()
        self._own = self._own_cpu()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._wall
        others = (self._busy() - self._system) - (self._own_cpu() - self._own)
        self.others_cores = max(0.0, others / wall) if wall > 0 else 0.0

    def _busy(self) -> float:
        times = self._psutil.cpu_times()
        return (
            sum(times)
            - times.idle
            - getattr(times, "iowait", 0.0)
            - getattr(times, "guest", 0.0)
            - getattr(times, "guest_nice", 0.0)
        )

    def _own_cpu(self) -> float:
        times = self._process.cpu_times()
        return times.user + times.system
