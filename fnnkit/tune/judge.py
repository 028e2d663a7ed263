"""The judge of a tune: LoadGen server-scenario runs for one deployment — a peak search, or one vote.

An estimate (samples/s of one warm in-process call at a small batch, a fraction of a second)
only orders the backends. Short searches rank candidates: 2 s runs, 10% precision, two
confirmation runs, starting at the best peak this backend (or, for its first search, any
backend) has shown so far, so the offline calibration runs once per tune and a neighbour costs a
few runs, not a whole search. A vote is one short run at one rate. Every LoadGen run, short or
full, happens in a fresh process, as ``fnnkit bench load`` runs it: a run's tail grows with the runs
its process made before (variant C, ONNX Runtime, 150k q/s, 2 ms, eight 2 s runs: in one process
the first two VALID and the six after them INVALID, p99 2.0-2.6 ms; a fresh process each, 7 of 8 VALID),
so short searches sharing one process ranked the backend searched second at 75k where bench
confirmed 197k. A fresh process costs ~0.35 s per 2 s ONNX Runtime run (2.6 s against 2.3 s).
Full searches are the search of ``fnnkit bench load --scenario server --find-peak
--min-duration-ms 5000`` (its precision and confirmation), started at 0.8x the short search's peak
and kept within 0.1-1.15x of it instead of starting from an offline calibration (so 14 runs to
find the rate instead of 20), so the tune's reported peak is the figure an independent bench run
with 5 s runs re-measures. Bench's own default is 20 s runs: one such search took 7-10 minutes on
a 2-core machine, more than a tune's whole budget.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fnnkit.backends import Predictor, get_backend
from fnnkit.bench.scenarios.config import ScenarioConfig
from fnnkit.bench.scenarios.runner import START_SHARE, run_one, sized_offline
from fnnkit.bench.scenarios.runs import FreshProcessRuns, Runs
from fnnkit.bench.scenarios.search import find_peak, max_runs
from fnnkit.tune.search import Deployment, Estimate, Fidelity, Trial, Vote

SHORT = {"min_duration_ms": 2000, "confirm_runs": 2, "peak_precision": 0.10, "max_steps": 10}
FULL = {"min_duration_ms": 5000, "max_steps": 14}  # bench load's settings otherwise; its window (below) needs fewer
# runs than bench's 20 from an offline calibration: a search that confirmed nothing at first and bisected back up
# from the window's floor confirmed 225,600 within 24 runs (A, 5 ms)
RUN_OVERHEAD_S = 1.5  # a fresh process's start, load and warm-up, and LoadGen's drain: 0.8 s measured, with margin
ESTIMATE_BATCH, ESTIMATE_S = 16, 0.2  # a batch the server sees near its peak; long enough for a stable median
FULL_START, FULL_RANGE = 0.8, (0.1, 1.15)  # a full search from a short peak starts below it and climbs, as bench's
# does: 5 s runs meet a p99 less easily than 2 s ones (E, 5 ms: short 224k, full 204k). Its floor is far below the
# start: a search that could fall only to 0.7x of the short peak confirmed nothing in 3 of 7 finals, where `fnnkit
# bench load` confirmed 0.89x (A, 1 ms, onnxruntime: short 148,634, bench 132,371), and one that could fall to 0.5x
# failed there too (C, 2 ms, int8-static: short 246,917, full failed 197k and 123k), so the README's tune ended
# with no deployment where a lower confirmed figure was the finding. Halving from 0.8x reaches 0.1x in three votes.


class OutOfTime(Exception):
    """The next run would end after the search's deadline."""


class DeadlineRuns:
    """Runs that refuse to start one that would end after ``deadline`` (``time.perf_counter()``): a run is
    planned at the longest one so far, or its minimum duration plus a process start before the first."""

    def __init__(self, runs: Runs, deadline: float) -> None:
        self.runs, self.deadline, self.longest = runs, deadline, 0.0
        self.backend, self.device, self.can_score = runs.backend, runs.device, runs.can_score

    def run(self, config: ScenarioConfig, log_dir: Path, qps: float | None, accuracy: bool = False) -> Any:
        started = time.perf_counter()
        if started + max(self.longest, config.min_duration_ms / 1000 + RUN_OVERHEAD_S) > self.deadline:
            raise OutOfTime
        result = self.runs.run(config, log_dir, qps, accuracy)
        if not getattr(result, "hung_before", 0):  # a run made again after a hang says nothing of the next one's cost
            self.longest = max(self.longest, time.perf_counter() - started)
        return result


class LoadgenJudge:
    """Measures deployments of one trained variant; every LoadGen log lands under ``log_root``."""

    def __init__(self, folder: Path, inputs: Any, base: ScenarioConfig, device: str, log_root: Path) -> None:
        self.folder, self.inputs, self.base, self.device = folder.absolute(), inputs, base, device
        self.log_root = log_root.absolute()  # a full search's runs write their logs from processes of their own
        self.scratch = tempfile.TemporaryDirectory(prefix="fnnkit-tune-")  # the inputs of full searches' processes
        self.predictors: dict[str, Predictor] = {}
        self.runs_done = 0  # measurements so far: numbers their log folders
        self.others_cores = 0.0  # the most cores other processes kept busy during any run: the tune's load
        self.hints: dict[str, float] = {}  # backend -> where its next short search starts
        self.found: dict[str, float] = {}  # backend -> its best short peak: where its full search starts

    def full_search_worst_s(self) -> float:
        """The longest a full-length search can take: its most runs (``find_peak``'s bound), each a fresh
        process's start and one run of the minimum duration (a 300 s tune whose reserve was planned at 2.5x a
        short search cut the pick's search after 24 runs, 154 s)."""
        config = self.config(Deployment("any"), "full")
        return max_runs(config.max_steps, config.confirm_runs) * (config.min_duration_ms / 1000 + RUN_OVERHEAD_S)

    def config(self, deployment: Deployment, fidelity: Fidelity) -> ScenarioConfig:
        knobs = {
            "max_batch": deployment.max_batch,
            "max_queue_delay_us": float(deployment.max_queue_delay_us),
            "workers": deployment.workers,
            "find_peak": True,
            "scenario": "server",
        }
        return ScenarioConfig(**{**self.base.model_dump(), **knobs, **(SHORT if fidelity == "short" else FULL)})

    def predictor(self, backend: str) -> Predictor:
        if backend not in self.predictors:
            predictor = get_backend(backend).load(self.folder, self.device, self.base.threads)
            predictor.warmup(1)
            self.predictors[backend] = predictor
        return self.predictors[backend]

    def runs_for(self, backend: str) -> Runs:
        """Where this measurement's LoadGen runs happen: each in a fresh process, as bench runs them."""
        return FreshProcessRuns(backend, self.folder, self.device, self.inputs, None, Path(self.scratch.name))

    def _begin(self, deployment: Deployment, fidelity: Fidelity, suffix: str = ""):
        """(config, runs, a fresh log folder, start time): what every measurement opens with."""
        config = self.config(deployment, fidelity)
        runs = self.runs_for(deployment.backend)
        self.runs_done += 1
        logs = self.log_root / f"{self.runs_done:03d}-{deployment.backend}-b{deployment.max_batch}{suffix}"
        return config, runs, logs, time.perf_counter()

    def peak(self, deployment: Deployment, fidelity: Fidelity, seconds_left: float | None = None) -> Trial:
        config, runs, logs, started = self._begin(deployment, fidelity)
        if seconds_left is not None:
            runs = DeadlineRuns(runs, started + seconds_left)
        try:
            if fidelity == "full" and deployment.backend not in self.found:
                found = run_one(runs, config, logs, lambda _b, result, _s: self._saw(result), "")
                peak, final = found.peak_qps, found.final if found.peak_qps is not None else None
            elif fidelity == "full":
                near = self.found[deployment.backend]
                window = {"min_qps": near * FULL_RANGE[0], "max_qps": near * FULL_RANGE[1]}
                peak, final = self._search(runs, config.model_copy(update=window), logs, near * FULL_START)
            else:
                peak, final = self._short(runs, deployment.backend, config, logs)
        except OutOfTime:
            return Trial(deployment, None, None, time.perf_counter() - started, fidelity, cut=True)
        seconds = time.perf_counter() - started
        return Trial(deployment, peak, final.p() if final is not None else None, seconds, fidelity)

    def sustains(self, deployment: Deployment, qps: float) -> Vote:
        """One short LoadGen run at ``qps`` (a failure while other processes were busy is run once more)."""
        config, runs, logs, started = self._begin(deployment, "short", "-vote")
        result = self._saw(runs.run(config, logs / "step-01", qps))
        if not result.valid and result.contended and not result.overloaded:
            result = self._saw(runs.run(config, logs / "step-02", qps))
        return Vote(deployment, qps, result.valid, time.perf_counter() - started)

    def _saw(self, result: Any) -> Any:
        self.others_cores = max(self.others_cores, result.others_cores)
        return result

    def _short(self, runs: Runs, backend: str, config: ScenarioConfig, logs: Path):
        steps = iter(range(1, 1000))

        def measure(qps: float, settings: ScenarioConfig = config):
            return self._saw(runs.run(settings, logs / f"step-{next(steps):02d}", qps))

        if backend not in self.hints and self.hints:  # same model, same batcher: start at the best peak seen so far
            self.hints[backend] = max(self.hints.values())
        if backend not in self.hints:
            offline = config.model_copy(update={"scenario": "offline", "find_peak": False})
            calibrated = sized_offline(lambda qps: measure(qps, offline), config.qps)[-1].completed_qps
            self.hints[backend] = (calibrated or config.qps) * START_SHARE
        peak, final = self._search(runs, config, logs, self.hints[backend], steps)
        if peak is not None:
            self.hints[backend] = max(self.hints[backend], peak)
            self.found[backend] = max(self.found.get(backend, 0.0), peak)
        return peak, final

    def _search(self, runs: Runs, config: ScenarioConfig, logs: Path, start: float, steps=None):
        """The peak search of ``fnnkit bench load`` with ``config``'s settings, from ``start``."""
        steps = steps or iter(range(1, 1000))

        def measure(qps: float):
            return self._saw(runs.run(config, logs / f"step-{next(steps):02d}", qps))

        search = find_peak(
            measure, start, config.min_qps, config.max_qps, config.peak_precision, config.max_steps,
            config.confirm_runs,
        )  # fmt: skip
        if search.peak_qps is None:
            return None, None
        return search.peak_qps, next(r for q, r in search.steps if q == search.peak_qps and r.valid)

    def estimate(self, backend: str) -> Estimate:
        """Samples/s of one warm call at a small batch, in process: orders the challenge, decides nothing."""
        started = time.perf_counter()
        predictor = self.predictor(backend)
        batch = self.inputs[:ESTIMATE_BATCH]
        predictor.warmup(ESTIMATE_BATCH)
        times = []
        while time.perf_counter() - started < ESTIMATE_S or len(times) < 5:
            t0 = time.perf_counter()
            predictor.predict(batch)
            times.append(time.perf_counter() - t0)
        return Estimate(backend, len(batch) / statistics.median(times), time.perf_counter() - started)
