"""What one load test asks for: scenario, offered load, latency bound, batcher, time cap.

Validated once, here: a rate, bound or batch size that cannot work is a ConfigError naming
the flag, before LoadGen or any backend is started.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from fnnkit.errors import ConfigError, unknown_choice

SCENARIOS = ("single-stream", "multi-stream", "offline", "server")


@dataclass(frozen=True)
class ScenarioConfig:
    scenario: str = "server"
    qps: float = 1000.0  # server: the offered rate; offline: LoadGen's expected rate
    latency_bound_ms: float = 2.0  # server: the p99 target LoadGen checks
    percentile: float = 0.99
    max_batch: int = 64  # the batcher never calls the model with more samples than this
    max_queue_delay_us: float = 0.0  # wait for company; 0 measured best (docs/results/2026-12-04-cpu: 0 vs 100 us)
    workers: int = 1  # threads calling the predictor; more only help backends that release the GIL
    threads: int = 1  # intra-op threads of torch / ONNX Runtime: batches are small
    seed: int = 0  # LoadGen's qsl / sample-index / schedule seeds: same seed, same arrivals
    min_duration_ms: int = 5000  # 2 s let one 20 ms stall on a shared machine decide a p99
    min_query_count: int = 500  # LoadGen's early stopping needs ~459 on-time queries to vouch for a p99
    time_cap_s: float = 60.0  # per LoadGen run: issuing stops here and the queue is drained, verdict CAPPED
    multi_stream_samples: int = 8  # samples per query in multi-stream (MLPerf's value)
    find_peak: bool = False
    peak_precision: float = 0.05  # stop the search when the invalid rate is within 5% of the valid one
    max_steps: int = 20  # LoadGen runs to find the rate (votes included); confirmation runs come on top
    confirm_runs: int = 2  # extra runs at the rate found; most runs there must be VALID for it to be reported
    min_qps: float = 20.0  # the search gives up below this: "no rate meets the bound"
    max_qps: float = 1e6

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise unknown_choice("scenario", self.scenario, SCENARIOS)
        _positive("--qps", self.qps)
        _positive("--latency-bound-ms", self.latency_bound_ms)
        _positive("--time-cap-s", self.time_cap_s)
        _positive("--min-duration-ms", self.min_duration_ms)
        for flag, value in (
            ("--max-batch", self.max_batch),
            ("--workers", self.workers),
            ("--threads", self.threads),
            ("--min-query-count", self.min_query_count),
            ("--multi-stream-samples", self.multi_stream_samples),
            ("--confirm-runs", self.confirm_runs),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{flag} must be a whole number >= 1, got {value!r}")
        if not (math.isfinite(self.max_queue_delay_us) and self.max_queue_delay_us >= 0):
            raise ConfigError(f"--max-queue-delay-us must be >= 0 microseconds, got {self.max_queue_delay_us!r}")
        if not 0 < self.percentile < 1:
            raise ConfigError(f"latency percentile must be between 0 and 1, got {self.percentile!r}")
        if self.find_peak and self.scenario != "server":
            raise ConfigError(
                f"--find-peak searches the server scenario's rate; got --scenario {self.scenario} "
                "(use --scenario server, or drop --find-peak)"
            )
        if self.min_duration_ms / 1000 >= self.time_cap_s:
            raise ConfigError(
                f"--min-duration-ms {self.min_duration_ms} does not fit in --time-cap-s {self.time_cap_s:g}: "
                "raise the cap or shorten the run"
            )
        if not (math.isfinite(self.peak_precision) and 0 < self.peak_precision < 1):
            raise ConfigError(f"--peak-precision must be between 0 and 1 (e.g. 0.05), got {self.peak_precision!r}")
        if not 0 < self.min_qps < self.max_qps:
            raise ConfigError(
                f"--min-qps and --max-qps must satisfy 0 < min < max, got {self.min_qps:g}..{self.max_qps:g}"
            )

    @property
    def bound_ns(self) -> int:
        return int(self.latency_bound_ms * 1e6)

    def as_dict(self) -> dict:
        return asdict(self)


def _positive(flag: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{flag} must be a positive number, got {value!r}")
