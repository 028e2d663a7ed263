"""One MLPerf LoadGen test of one SUT, and what LoadGen concluded, read back from its own log.

LoadGen generates the arrivals (seeded), times every query from its scheduled arrival,
computes the percentiles and decides VALID / INVALID; fnnkit only reads ``mlperf_log_detail.txt``.
Every run has a hard cap: LoadGen stops issuing at ``time_cap_s`` and the SUT answers what is
still queued without the model, so a backend far slower than the offered load ends in a
CAPPED verdict instead of a hang.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fnnkit.backends import Predictor, set_threads
from fnnkit.bench.scenarios.config import ScenarioConfig
from fnnkit.bench.scenarios.sut import BatchingSUT
from fnnkit.bench.stats import CONTENDED_CORES, CpuLoad
from fnnkit.errors import ConfigError, FnnkitError

INSTALL_HINT = "pip install mlcommons-loadgen  (a dependency of fnnkit: `make setup` installs it)"
DRAIN_GRACE_S = 5.0  # after the cap, queued work may run this long (at most the cap again), then is answered unrun
GENERATE_FOR_NS = 10_000  # streams: LoadGen generates min_duration / this queries, so a fast SUT never runs out
OVERLOADED = 0.8  # a server run that completed under this share of the offered rate was far above capacity
# LoadGen's issue thread needs the GIL for every arrival; a worker running Python holds it up to the switch interval
# (5 ms by default) before handing it over. At 0.1 ms the null SUT at 150k q/s had p99 0.92 / 0.79 / 0.44 ms against
# 1.37 / 5.01 / 0.91 ms with the default, interleaved runs on the 2-core VM (docs/scenarios.md)
SWITCH_INTERVAL_S = 1e-4
PERCENTILES = ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")
_SCENARIO_NAMES = {
    "single-stream": "SingleStream",
    "multi-stream": "MultiStream",
    "offline": "Offline",
    "server": "Server",
}


class LoadgenMissing(ConfigError):
    """mlperf_loadgen is not installed: scenarios need it."""


def loadgen():
    try:
        import mlperf_loadgen
    except ImportError:
        raise LoadgenMissing(f"load scenarios need MLPerf LoadGen, which is not installed: {INSTALL_HINT}") from None
    return mlperf_loadgen


@dataclass
class LoadgenResult:
    """LoadGen's verdict and numbers for one run, plus what the SUT saw."""

    mode: str  # "performance" | "accuracy"
    target_qps: float | None
    validity: str  # VALID | INVALID | CAPPED | FAILED
    reasons: list[str]
    completed_qps: float | None  # samples/s LoadGen saw completed
    latency_ns: dict[str, int]  # percentile ("99.00") -> ns, from arrival to completion
    mean_latency_ns: int | None
    queries: int | None
    mean_batch: float  # samples per model call
    wall_s: float
    log_dir: str
    accuracy: float | None = None  # AccuracyOnly: % of logged responses whose class matches the label
    others_cores: float = 0.0  # cores other processes kept busy during the run (fnnkit.bench.stats.CpuLoad)
    hung_before: int = 0  # processes of this run stopped for hanging after it (FreshProcessRuns); this is the next's

    @property
    def overloaded(self) -> bool:
        """Completed well under the offered rate: the queue grew all run long, no stall of a moment explains it."""
        done, offered = self.completed_qps, self.target_qps
        return bool(done and offered and done < OVERLOADED * offered)

    @property
    def contended(self) -> bool:
        """Other processes used enough of the machine to make this run's verdict suspect."""
        return self.others_cores > CONTENDED_CORES

    @property
    def valid(self) -> bool:
        return self.validity == "VALID"

    def p(self, percentile: str = "99.00") -> float | None:
        """A latency percentile in ms."""
        ns = self.latency_ns.get(percentile)
        return None if ns is None else ns / 1e6


def settings_for(config: ScenarioConfig, qps: float | None, accuracy: bool):
    lg = loadgen()
    s = lg.TestSettings()
    s.scenario = getattr(lg.TestScenario, _SCENARIO_NAMES[config.scenario])
    s.mode = lg.TestMode.AccuracyOnly if accuracy else lg.TestMode.PerformanceOnly
    s.qsl_rng_seed = s.sample_index_rng_seed = s.schedule_rng_seed = config.seed
    s.min_duration_ms = config.min_duration_ms
    s.min_query_count = config.min_query_count
    s.max_duration_ms = int(config.time_cap_s * 1000)
    pct = config.percentile
    if config.scenario == "server":
        s.server_target_qps = float(qps or config.qps)
        s.server_target_latency_ns = config.bound_ns
        s.server_target_latency_percentile = pct
        s.server_coalesce_queries = config.coalesce_queries
    elif config.scenario == "offline":
        s.offline_expected_qps = float(qps or config.qps)
    elif config.scenario == "multi-stream":
        s.multi_stream_samples_per_query = config.multi_stream_samples
        s.multi_stream_expected_latency_ns = GENERATE_FOR_NS
        s.multi_stream_target_latency_percentile = pct
    else:
        s.single_stream_expected_latency_ns = GENERATE_FOR_NS
        s.single_stream_target_latency_percentile = pct
    return s


def run_loadgen(
    predictor: Predictor,
    inputs: Any,
    config: ScenarioConfig,
    log_dir: Path,
    qps: float | None = None,
    labels: Any = None,
) -> LoadgenResult:
    """One LoadGen run; with ``labels`` it is AccuracyOnly and the responses are scored."""
    lg = loadgen()
    set_threads(config.threads)  # also for the null predictor: a second idle OpenMP thread costs ms when cores are busy
    accuracy = labels is not None
    sut = BatchingSUT(
        predictor, inputs, config.max_batch, config.max_queue_delay_us, config.workers, with_data=accuracy
    )
    work = Path(tempfile.mkdtemp(prefix=f".{log_dir.name}.tmp-", dir=_parent(log_dir)))  # see partial_logs
    log = lg.LogSettings()
    log.log_output.outdir = str(work)
    log.log_output.copy_summary_to_stdout = False
    log.enable_trace = False
    n = len(inputs)
    qsl = lg.ConstructQSL(n, n, _noop, _noop)  # samples already sit preprocessed in one tensor
    handle = lg.ConstructFastSUT(sut.issue, sut.flush)
    sut.start()  # binds every batch size before the clock starts
    started = time.perf_counter()
    grace = min(DRAIN_GRACE_S, config.time_cap_s)
    sut.drain_after(started + config.time_cap_s + grace)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # for this run only: the process's own setting comes back after it
    try:
        with CpuLoad() as load:
            lg.StartTestWithLogSettings(handle, qsl, settings_for(config, qps, accuracy), log, "")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # Ctrl-C or a crash: no half-written log folder is left behind
        raise
    finally:
        sys.setswitchinterval(switch)
        wall = time.perf_counter() - started
        sut.stop()
        lg.DestroyFastSUT(handle)
        lg.DestroyQSL(qsl)
    if sut.errors:
        shutil.rmtree(work, ignore_errors=True)
        exc = sut.errors[0]
        raise FnnkitError(f"{predictor.backend} failed inside the scenario: {type(exc).__name__}: {exc}") from exc
    result = parse_detail(work / "mlperf_log_detail.txt", mode="accuracy" if accuracy else "performance")
    result.target_qps = float(qps or config.qps) if config.scenario in ("server", "offline") else None
    result.mean_batch = sut.samples / sut.batches if sut.batches else 0.0
    result.wall_s = wall
    result.others_cores = round(load.others_cores, 3)
    if sut.drained or wall > config.time_cap_s + grace:
        result.validity = "CAPPED"
        result.reasons.append(
            f"hit the {config.time_cap_s:g} s time cap: {sut.drained} queued samples were answered without the model"
        )
    if accuracy:
        result.accuracy = score_accuracy(work / "mlperf_log_accuracy.json", labels)
    (work / "mlperf_log_trace.json").unlink(missing_ok=True)  # empty with tracing off
    if log_dir.is_symlink() or (log_dir.exists() and not log_dir.is_dir()):  # checked up front; raced since
        shutil.rmtree(work, ignore_errors=True)
        raise ConfigError(f"{log_dir} is not a folder fnnkit made (a file or a link); move it away and run again")
    if log_dir.exists():
        shutil.rmtree(log_dir)
    work.rename(log_dir)
    result.log_dir = str(log_dir)
    return result


def _noop(samples: list[int]) -> None:
    """QSL load/unload: every sample is already in memory."""


def check_log_places(log_root: Path, names: list[str]) -> None:
    """Refuse, before anything is measured, a file or a link where a log folder goes.

    fnnkit creates ``log_root`` and one folder per name in it, and replaces a folder of the
    same name from an earlier run; a file there would fail only after the measurement, and a
    symbolic link would be followed. Folders above ``log_root`` may be links (a user's layout);
    none of them may be a file.
    """
    for place in (log_root, *(log_root / name for name in names)):
        if place.is_symlink():
            raise ConfigError(
                f"LoadGen's log folder {place} is a symbolic link; fnnkit replaces that folder on every run "
                "and will not follow a link there. Remove the link or choose another --json path"
            )
        if place.exists() and not place.is_dir():
            raise ConfigError(f"LoadGen's log folder {place} is a file; move it away or choose another --json path")
    for above in log_root.parents:
        if above.exists():
            if not above.is_dir():
                raise ConfigError(f"LoadGen's log folder {log_root} cannot be made: {above} is a file")
            break


def partial_logs(log_dir: Path) -> list[Path]:
    """The folders a run writes its logs into before they become ``log_dir``: what an interrupted run leaves."""
    return sorted(log_dir.parent.glob(f".{log_dir.name}.tmp-*"))


def _parent(log_dir: Path) -> Path:
    log_dir.parent.mkdir(parents=True, exist_ok=True)
    return log_dir.parent


def parse_detail(path: Path, mode: str) -> LoadgenResult:
    """LoadGen's result_* entries from ``mlperf_log_detail.txt`` (its own MLLOG JSON lines)."""
    values: dict[str, object] = {}
    errors: list[str] = []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise FnnkitError(f"LoadGen wrote no detail log at {path}: {exc}") from exc
    for line in lines:
        if not line.startswith(":::MLLOG"):
            continue
        entry = json.loads(line[len(":::MLLOG") :])
        key = entry.get("key", "")
        values[key] = entry.get("value")
        if entry.get("metadata", {}).get("is_error"):
            errors.append(f"{key}: {entry.get('value')}")
    latency = {
        p: int(values[f"result_{p}_percentile_latency_ns"])
        for p in PERCENTILES
        if f"result_{p}_percentile_latency_ns" in values
    }
    reasons = [name for key, name in _REASONS if values.get(key) is False]
    more = re.search(r"at least (\d+) more queries", str(values.get("early_stopping_result", "")))
    if more:
        reasons.append(f"early stopping: would need {int(more[1]):,} more queries")
    validity = str(values.get("result_validity", "VALID" if mode == "accuracy" else "FAILED"))
    if errors and mode == "performance":
        reasons += errors
    return LoadgenResult(
        mode=mode,
        target_qps=None,
        validity=validity,
        reasons=reasons,
        completed_qps=_samples_per_s(values),
        latency_ns=latency,
        mean_latency_ns=_int(values.get("result_mean_latency_ns")),
        queries=_int(values.get("result_query_count")),
        mean_batch=0.0,
        wall_s=0.0,
        log_dir=str(path.parent),
    )


_REASONS = (
    ("result_perf_constraints_met", "latency bound not met"),
    ("result_min_duration_met", "min duration not met"),
    ("result_min_queries_met", "min query count not met"),
)


def _samples_per_s(values: dict) -> float | None:
    """Server and offline log samples/s; the streams log queries/s or only the mean query latency."""
    for key in ("result_completed_samples_per_sec", "result_samples_per_second"):
        if key in values:
            return _float(values[key])
    per_query = _float(values.get("effective_samples_per_query")) or 1.0
    qps = _float(values.get("result_qps_with_loadgen_overhead"))
    if qps is None and _float(values.get("result_mean_query_latency_ns")):  # multi-stream logs no rate:
        qps = 1e9 / float(values["result_mean_query_latency_ns"])  # one query at a time, back to back
    return None if qps is None else qps * per_query


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def score_accuracy(path: Path, labels: Any) -> float:
    """% of logged responses whose class equals the label of the sample LoadGen sent; every sample once.

    numpy only (``labels`` may be a CPU tensor): a run of an ONNX file imports no torch.
    """
    import numpy as np

    entries = json.loads(path.read_text() or "[]")
    if not entries:
        raise FnnkitError(f"LoadGen logged no responses in {path}: the accuracy run did not complete")
    indices = np.fromiter((e["qsl_idx"] for e in entries), dtype=np.int64, count=len(entries))
    data = b"".join(bytes.fromhex(e["data"]) for e in entries)
    if len(data) != 4 * len(entries):
        raise FnnkitError(f"{path}: {len(entries)} responses but {len(data)} bytes; each must be one int32 class")
    classes = np.frombuffer(data, dtype="<i4")
    return 100.0 * float(np.mean(classes == np.asarray(labels)[indices]))
