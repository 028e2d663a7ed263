"""Where a LoadGen run happens: in a fresh process of its own (the default), or in this one.

A LoadGen run's tail grows with the runs its process made before. On a 2-core VM at a fixed
150k q/s (variant C, ONNX Runtime, 20 s runs) the first run of a process was VALID 6 times in 7
and the later runs of the same process 7 times in 14; an independent harness with neither
fnnkit nor torch in it failed its third run in one process in both of two tries. A search whose
later runs fail more often than its first ones lands wherever the failures begin: three rounds of
fnnkit's search found 78,470 / 112,653 / 144,851 q/s with every run in one process, and
184,627 / 213,256 / 198,317 with a fresh process per run (docs/results/2026-12-05-cpu-xeon).

So ``FreshProcessRuns`` starts every run in a new isolated process (``fnnkit.bench.child``) that
loads the model, binds and warms its batch sizes and runs LoadGen once; its result comes back
as one JSON record (about 0.35 s more per run than in process for ONNX Runtime: 2.6 s against 2.3 s
for a 2 s run). ``InProcessRuns`` reuses one loaded predictor: for predictors that exist only in
this process (a test's fake) and for ``--same-process``. ``fnnkit tune`` runs every one of its
runs, short and full, in a fresh process: in one process its second backend's short search
ranked a backend at 75k q/s that bench confirmed at 197k (variant C, 2 ms).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import Field, field_validator

from fnnkit.backends import Predictor
from fnnkit.bench.child import ChildStopped, crash_message, mark_ready, run_child
from fnnkit.bench.records import Bool, Float, Record, read_record, save_record
from fnnkit.bench.scenarios.config import ScenarioConfig
from fnnkit.bench.scenarios.loadgen import DRAIN_GRACE_S, LoadgenResult, partial_logs, run_loadgen
from fnnkit.errors import FnnkitError
from fnnkit.paths import require_absolute

NULL_BACKEND = "null"  # the null predictor's backend name: the same batcher with a call that does nothing
START_LIMIT_S = 600  # loading and warming a model before the run: a torch.compile on a slow machine, with margin
# after the run's cap and drain: LoadGen's summary and the accuracy score. A run that is still going then has hung;
# one hung inside LoadGen's StopLogging() after a 2 s run held a tune until START_LIMIT_S ended it (692 s)
END_LIMIT_S = 30
HUNG_RERUNS = 1  # a run that hung is run again in a new process this many times: a hang says nothing about the rate


class Runs(Protocol):
    """Runs LoadGen for one backend on one device: the same call whichever process it happens in."""

    backend: str
    device: str
    can_score: bool  # labels are known: an AccuracyOnly run can be scored

    def run(
        self, config: ScenarioConfig, log_dir: Path, qps: float | None, accuracy: bool = False
    ) -> LoadgenResult: ...


def warmed(predictor: Predictor, max_batch: int) -> Predictor:
    """A predictor whose first call at every batch size the batcher can form is behind it: OpenVINO builds
    each new input shape on its first call (variant C, openvino-bf16: 1.8 ms median, 3.1 ms at most, 114 ms
    over batches 2-63), a stall a long-running server pays once and a fresh process would pay inside the
    timed run, in its tail."""
    predictor.warmup(1)
    predictor.warmup(max_batch)
    for batch in range(2, max_batch):
        predictor.warmup(batch, rounds=1)
    return predictor


class InProcessRuns:
    """LoadGen runs in this process, on one predictor loaded (and warmed) by the caller."""

    def __init__(self, predictor: Predictor, inputs: Any, labels: Any = None) -> None:
        self.predictor, self.inputs, self.labels = predictor, inputs, labels
        self.backend, self.device = predictor.backend, predictor.device
        self.can_score = labels is not None

    def run(self, config: ScenarioConfig, log_dir: Path, qps: float | None, accuracy: bool = False) -> LoadgenResult:
        labels = self.labels if accuracy else None
        return run_loadgen(self.predictor, self.inputs, config, log_dir, qps=qps, labels=labels)


class RunJob(Record):
    """One LoadGen run for a fresh process: what to load, the settings, where the logs go."""

    backend: str = Field(max_length=64)
    folder: str  # the variant's folder (unused by the null predictor)
    device: str = Field(max_length=32)
    config: ScenarioConfig
    qps: Float | None = None
    log_dir: str
    inputs: str  # .npy of the preprocessed test inputs, float32 [N, 784]
    labels: str | None = None  # .npy of the labels, int64 [N]: only for an accuracy run
    accuracy: Bool = False

    @field_validator("folder", "log_dir", "inputs", "labels")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None:
            require_absolute(value, "LoadGen run path")  # the process runs in its own private folder
        return value


class RunOutcome(Record):
    """A run's result, or the message of what stopped it."""

    result: LoadgenResult | None = None
    error: str = Field("", max_length=100_000)


class FreshProcessRuns:
    """Every LoadGen run in a fresh isolated process that loads the model itself (the default)."""

    def __init__(self, backend: str, folder: Path, device: str, inputs: Any, labels: Any, scratch: Path) -> None:
        self.backend, self.folder, self.device = backend, require_absolute(folder, "variant folder"), device
        self.can_score = labels is not None
        self.inputs_file = require_absolute(scratch, "scratch folder") / "inputs.npy"
        self.labels_file = scratch / "labels.npy"
        if not self.inputs_file.exists():  # one copy per scenario run, shared by its backends
            np.save(self.inputs_file, np.ascontiguousarray(np.asarray(inputs, dtype=np.float32)))
        if labels is not None and not self.labels_file.exists():
            np.save(self.labels_file, np.asarray(labels, dtype=np.int64))

    def run(self, config: ScenarioConfig, log_dir: Path, qps: float | None, accuracy: bool = False) -> LoadgenResult:
        job = RunJob(
            backend=self.backend, folder=str(self.folder), device=self.device, config=config, qps=qps,
            log_dir=str(require_absolute(log_dir, "LoadGen log folder")), inputs=str(self.inputs_file),
            labels=str(self.labels_file) if accuracy else None, accuracy=accuracy,
        )  # fmt: skip
        what = f"a LoadGen run of {self.backend} on {self.device}"
        limit = config.time_cap_s + DRAIN_GRACE_S + END_LIMIT_S
        for attempt in range(HUNG_RERUNS + 1):
            try:
                outcome = run_child("fnnkit.bench.scenarios.runs", job, RunOutcome, what, START_LIMIT_S,
                                    after_ready=limit)  # fmt: skip
                break
            except ChildStopped as exc:
                _remove_partial_logs(log_dir)
                if attempt == HUNG_RERUNS:
                    raise FnnkitError(f"{exc} ({attempt + 1} times in a row)") from None
            except BaseException:  # the child was killed (fnnkit.spawn) before it could tidy up after itself
                _remove_partial_logs(log_dir)
                raise
        if outcome.result is None:
            raise FnnkitError(outcome.error or f"{what} returned no result")
        outcome.result.hung_before = attempt
        return outcome.result


def _remove_partial_logs(log_dir: Path) -> None:
    for partial in partial_logs(log_dir):
        shutil.rmtree(partial, ignore_errors=True)


def open_predictor(job: RunJob) -> Predictor:
    """The job's predictor, loaded and warmed: the null one, or the backend's on the exported file."""
    from fnnkit.backends import get_backend
    from fnnkit.bench.scenarios.sut import NullPredictor

    threads = job.config.threads
    if job.backend == NULL_BACKEND:
        return NullPredictor(threads)
    return warmed(get_backend(job.backend).load(Path(job.folder), job.device, threads), job.config.max_batch)


def main(argv: list[str]) -> int:
    """``python -m fnnkit.bench.scenarios.runs JOB.json OUT.json``: one LoadGen run; the outcome as JSON."""
    job_path, out_path = argv
    job = read_record(RunJob, job_path, "LoadGen run", "fnnkit bench load")
    try:
        inputs = np.load(job.inputs, allow_pickle=False)
        labels = np.load(job.labels, allow_pickle=False) if job.labels else None
        predictor = open_predictor(job)
        mark_ready(out_path)  # from here the run's own limit applies (FreshProcessRuns)
        result = run_loadgen(predictor, inputs, job.config, Path(job.log_dir), qps=job.qps, labels=labels)
        outcome = RunOutcome(result=result)
    except FnnkitError as exc:  # a user-facing failure: its message already says what to do
        outcome = RunOutcome(error=str(exc))
    except Exception as exc:  # a bug or a runtime crash: the parent shows it with the traceback's tail
        outcome = RunOutcome(error=crash_message(exc))
    save_record(outcome, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
