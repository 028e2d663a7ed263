"""A whole scenario run: every selected backend (and the null SUT) through LoadGen, then accuracy.

The scenario layer knows backends only through the registry: ``get_backend(name).load(folder,
device, threads)`` gives a Predictor, and the same batcher serves them all. Each LoadGen run
happens in a fresh process by default, or in this one (``fnnkit.bench.scenarios.runs``). The
null predictor runs first under the same settings: its peak is the SUT's own ceiling, reported
beside every backend so nobody mistakes a Python bottleneck for a model's.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import Field

from fnnkit.backends import Predictor
from fnnkit.bench.planner import nothing_to_run, plan
from fnnkit.bench.records import Float, Int, Record, RunHeader, save_record
from fnnkit.bench.results import Skipped
from fnnkit.bench.scenarios.config import ScenarioConfig
from fnnkit.bench.scenarios.loadgen import LoadgenResult, check_log_places
from fnnkit.bench.scenarios.runs import NULL_BACKEND, FreshProcessRuns, InProcessRuns, Runs, warmed
from fnnkit.bench.scenarios.search import find_peak
from fnnkit.bench.scenarios.sut import NullPredictor
from fnnkit.data import load_test_set
from fnnkit.env import package_version
from fnnkit.store import read_model_card

SCHEMA = "fnnkit.scenario/3"  # 3: the run header; skipped rows are the plan's records
NULL = "null-sut"  # the row name of the null predictor's run
START_SHARE = 0.2  # --find-peak starts at this share of the offline throughput
CALIBRATION_MS = 2000  # the offline run that places the start: a throughput, not a p99, needs no long run
StepFn = Callable[[str, LoadgenResult, str], None]  # (backend, result, its scenario) after every LoadGen run


class BackendScenario(Record):
    """Everything one backend did in this scenario, built once when its last LoadGen run is in."""

    variant: str
    backend: str
    device: str
    steps: list[LoadgenResult]
    peak_qps: Float | None = None  # --find-peak: the confirmed peak rate; None: no rate met the bound, or unconfirmed
    accuracy: LoadgenResult | None = None
    calibration: list[LoadgenResult] = []  # --find-peak: the offline runs it started from
    peak_status: str | None = None  # --find-peak: "confirmed" | "no rate met the bound" | "could not confirm a peak"
    failed_above_qps: Float | None = None  # --find-peak: the lowest rate whose vote failed

    @property
    def final(self) -> LoadgenResult:
        """The run that answers the question: a VALID run at the peak for a search, else the last run."""
        if self.peak_qps is not None:
            return next(s for s in self.steps if s.valid and s.target_qps == self.peak_qps)
        return self.steps[-1]

    @property
    def at_peak(self) -> list[LoadgenResult]:
        """Every run at the reported peak: their p99 spread is the peak's confidence."""
        return [s for s in self.steps if self.peak_qps is not None and s.target_qps == self.peak_qps]

    @property
    def others_cores(self) -> float:
        """The most cores other processes kept busy during any of this backend's runs."""
        return max((r.others_cores for r in [*self.calibration, *self.steps]), default=0.0)


class ScenarioRun(Record):
    header: RunHeader
    loadgen: dict[str, str | None]  # {"version": ...}: LoadGen's rules (early stopping) change between releases
    dataset: str
    samples: Int = Field(ge=1)
    overhead: BackendScenario  # the null predictor: the SUT's own ceiling
    results: list[BackendScenario]
    skipped: list[Skipped] = []

    @property
    def config(self) -> dict:
        return self.header.config


def run_scenarios(
    config: ScenarioConfig,
    folder: Path,
    backends: list[str],
    devices: tuple[str, ...],
    log_root: Path,
    data_dir: str | None = None,
    on_step: StepFn | None = None,
) -> ScenarioRun:
    """Run ``config`` for every (backend, device) that can run here; the others are skipped with why (``plan``)."""
    folder, log_root = folder.absolute(), log_root.absolute()  # each run's process starts in a folder of its own
    card = read_model_card(folder)
    variant = card["variant"]["name"]
    targets, skipped = plan(folder.parent.parent, (variant,), folder.parent.name, tuple(backends), devices)
    if not targets:
        nothing_to_run(skipped)
    names = [NULL, *(f"{variant}-{t.backend.name}-{t.device}" for t in targets)]
    check_log_places(log_root, names)  # a file or a link where a log folder goes: refused before measuring
    inputs, labels = load_test_set(card, data_dir)
    notify = on_step or (lambda backend, result, scenario: None)
    header = RunHeader.new(SCHEMA, "load", config)

    with tempfile.TemporaryDirectory(prefix="fnnkit-scenario-") as scratch:

        def runs_of(backend: str, device: str, load: Callable[[], Predictor], scored: bool = True) -> Runs:
            known = labels if scored else None  # the null predictor's answers are not worth scoring
            if config.fresh_process:
                return FreshProcessRuns(backend, folder, device, inputs, known, Path(scratch))
            return InProcessRuns(load(), inputs, known)

        null = runs_of(NULL_BACKEND, "cpu", lambda: NullPredictor(config.threads), scored=False)
        overhead = run_one(null, config, log_root / NULL, notify, variant)
        results = []
        for t in targets:
            load = lambda t=t: warmed(t.backend.load(folder, t.device, config.threads), config.max_batch)  # noqa: E731
            logs = log_root / f"{variant}-{t.backend.name}-{t.device}"
            results.append(run_one(runs_of(t.backend.name, t.device, load), config, logs, notify, variant))
    return ScenarioRun(
        header=header,
        loadgen={"version": package_version("mlcommons-loadgen")},
        dataset=card["dataset"]["name"],
        samples=len(inputs),
        overhead=overhead,
        results=results,
        skipped=skipped,
    )


def run_one(
    runs: Runs,
    config: ScenarioConfig,
    logs: Path,
    notify: StepFn,
    variant: str,
) -> BackendScenario:
    """Performance (one run, or the search), then AccuracyOnly at the rate found when ``runs`` can score."""
    counter = iter(range(1, 10_000))

    def measure(qps: float | None, settings: ScenarioConfig = config) -> LoadgenResult:
        result = runs.run(settings, logs / f"step-{next(counter):02d}", qps)
        notify(runs.backend, result, settings.scenario)
        return result

    peak, calibration, status, failed_above = None, [], None, None
    if config.find_peak:
        # p99 need not fall with the rate (at low rates every query wakes an idle worker), so the search
        # starts near the top, from the offline throughput of the same batcher instead of at --qps: peaks
        # under a 2 ms bound measured 18-24% of it (docs/design.md), and a rate far above the peak costs
        # the longest runs (the queue LoadGen must drain)
        offline = config.model_copy(
            update={
                "scenario": "offline",
                "find_peak": False,
                "min_duration_ms": min(config.min_duration_ms, CALIBRATION_MS),
            }
        )
        calibration = sized_offline(lambda qps: measure(qps, offline), config.qps)
        start = (calibration[-1].completed_qps or 5 * config.qps) * START_SHARE
        search = find_peak(
            measure, start, config.min_qps, config.max_qps, config.peak_precision, config.max_steps,
            config.confirm_runs,
        )  # fmt: skip
        steps = [result for _, result in search.steps]
        peak, status, failed_above = search.peak_qps, search.status, search.failed_above
    elif config.scenario == "offline":
        steps = sized_offline(measure, config.qps)
    else:
        steps = [measure(config.qps)]
    accuracy = None
    if runs.can_score:
        rate = peak or config.qps  # not the search's last, lowest rate: every test sample is sent once
        accuracy = runs.run(config, logs / "accuracy", rate, accuracy=True)
        notify(runs.backend, accuracy, config.scenario)
    return BackendScenario(
        variant=variant, backend=runs.backend, device=runs.device, steps=steps, peak_qps=peak,
        accuracy=accuracy, calibration=calibration, peak_status=status, failed_above_qps=failed_above,
    )  # fmt: skip


def sized_offline(measure: Callable[[float], LoadgenResult], qps: float) -> list[LoadgenResult]:
    """Offline: LoadGen sizes the run from the expected rate; a low guess is re-run once at 1.5x the measured rate."""
    runs = [measure(qps)]
    if "min duration not met" in runs[0].reasons and runs[0].completed_qps:
        runs.append(measure(runs[0].completed_qps * 1.5))
    return runs


def save_scenario_run(run: ScenarioRun, path: str | Path) -> Path:
    """The run's JSON, written atomically beside LoadGen's logs."""
    return save_record(run, path)
