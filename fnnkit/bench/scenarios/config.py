"""What one load test asks for: scenario, offered load, latency bound, batcher, time cap.

Validated once, here, with every bound stated once (the CLI reads its option bounds from these
fields): a rate, bound or batch size that cannot work is refused before LoadGen or any backend
is started.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fnnkit.bench.records import Bool, Float, Int, Record
from fnnkit.env import MAX_BATCH, MAX_THREADS

SCENARIOS = ("single-stream", "multi-stream", "offline", "server")
MAX_RATE = 1e9  # queries/s: far above any machine; a larger number is a typo
SEED_MAX = 2**63 - 1  # LoadGen's seeds are 64-bit


class ScenarioConfig(Record):
    scenario: Literal["single-stream", "multi-stream", "offline", "server"] = "server"
    qps: Float = Field(1000.0, gt=0, le=MAX_RATE)  # server: the offered rate; offline: LoadGen's expected rate
    latency_bound_ms: Float = Field(2.0, gt=0, le=3_600_000)  # server: the p99 target LoadGen checks
    percentile: Float = Field(0.99, gt=0, lt=1)
    max_batch: Int = Field(64, ge=1, le=MAX_BATCH)  # the batcher never calls the model with more samples
    max_queue_delay_us: Float = Field(0.0, ge=0, le=10_000_000)  # wait for company; 0 measured best
    # server: queries whose arrival time has passed when LoadGen's issue thread gets the GIL come in one call
    # (LoadGen's server_coalesce_queries; latency still counts from each one's own arrival). Without it one
    # stall left the issue thread a call per late query behind: at 250k q/s 2 of 3 runs collapsed to a p99
    # of seconds; with it 0 of 3, and both fnnkit and the independent harness passed 290k 2 of 3
    # (docs/results/2026-12-05-cpu, coalesce-ab.txt)
    coalesce_queries: Bool = True
    workers: Int = Field(1, ge=1, le=256)  # threads calling the predictor; more help only GIL-free backends
    # each LoadGen run in a fresh process: a run's p99 grew with the runs its process made before
    # (fnnkit.bench.scenarios.runs); False runs them all in this one
    fresh_process: Bool = True
    threads: Int = Field(1, ge=1, le=MAX_THREADS)  # intra-op threads of torch / ONNX Runtime: batches are small
    seed: Int = Field(0, ge=0, le=SEED_MAX)  # LoadGen's qsl / sample-index / schedule seeds: same seed, same arrivals
    # 5 s runs failed now and then at any rate (4 of 22 at 60-96k q/s: a stall of the machine), so their
    # verdicts were split from 150k to 280k (C, ONNX Runtime); 20 s runs: 3/3 VALID at 150k, 0/3 at 200k
    # (docs/results/2026-12-05-cpu)
    min_duration_ms: Int = Field(20_000, ge=1, le=86_400_000)
    min_query_count: Int = Field(500, ge=1, le=10**9)  # early stopping needs ~459 on-time queries for a p99
    time_cap_s: Float = Field(60.0, gt=0, le=86_400)  # per LoadGen run: issuing stops here, the queue drains
    multi_stream_samples: Int = Field(8, ge=1, le=MAX_BATCH)  # samples per query in multi-stream (MLPerf's value)
    find_peak: Bool = False
    peak_precision: Float = Field(0.05, gt=0, le=0.99)  # stop when the invalid rate is within 5% of the valid one
    max_steps: Int = Field(20, ge=1, le=1000)  # LoadGen runs to find the rate; confirmation runs come on top
    confirm_runs: Int = Field(2, ge=1, le=100)  # extra runs at the rate found; most must be VALID
    min_qps: Float = Field(20.0, gt=0, le=MAX_RATE)  # the search gives up below this: "no rate meets the bound"
    max_qps: Float = Field(1e6, gt=0, le=MAX_RATE)

    @model_validator(mode="after")
    def _consistent(self) -> ScenarioConfig:
        if self.find_peak and self.scenario != "server":
            raise ValueError(
                f"--find-peak searches the server scenario's rate; got --scenario {self.scenario} "
                "(use --scenario server, or drop --find-peak)"
            )
        if self.min_duration_ms / 1000 >= self.time_cap_s:
            raise ValueError(
                f"--min-duration-ms {self.min_duration_ms} does not fit in --time-cap-s {self.time_cap_s:g}: "
                "raise the cap or shorten the run"
            )
        if not self.min_qps < self.max_qps:
            raise ValueError(f"--min-qps must be below --max-qps, got {self.min_qps:g}..{self.max_qps:g}")
        return self

    @property
    def bound_ns(self) -> int:
        return int(self.latency_bound_ms * 1e6)
