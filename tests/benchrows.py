"""A plausible benchmark row for tests of the harness's bookkeeping (stats, compare, schema)."""

from __future__ import annotations

from fnnkit.bench import BenchRow
from fnnkit.bench.results import Latency, Memory, Parity, Setup, Trust


def row(
    *, p50_us: float = 10.0, spread: float = 0.05, busy_cores: float = 0.0, accuracy: float | None = 90.0,
    agrees: bool = True, max_abs_diff: float = 0.0, peak_device_mb: float | None = None, **overrides,
) -> BenchRow:  # fmt: skip
    """A row with its sub-records; ``accuracy=None``: parity not measured."""
    base = dict(
        variant="A", backend="eager", device="cpu", precision="fp32", batch_size=1, threads=1, wait_policy="spin",
        throughput=1e5, gflops=1.0,
        latency=Latency(
            p50_us=p50_us, p90_us=p50_us * 1.1, p99_us=p50_us * 1.2, mean_us=p50_us * 1.02, min_us=p50_us * 0.9,
            spread=spread, samples=100, seconds=0.1, distribution_us={"p1": 9.0, "p25": 9.5, "p50": 10.0,
                                                                     "p75": 10.5, "p99": 12.0},
        ),
        trust=Trust(stable=True, wide=spread > 0.25, busy_cores=busy_cores, contended=busy_cores > 0.25),
        setup=Setup(load_s=0.1, first_call_ms=1.0),
        parity=None if accuracy is None else Parity(
            accuracy=accuracy, eager_accuracy=90.0, max_abs_diff=max_abs_diff, agreement=100.0, agrees=agrees
        ),
        memory=Memory(peak_rss_mb=100.0, rss_added_mb=1.0, peak_device_mb=peak_device_mb),
    )  # fmt: skip
    return BenchRow(**{**base, **overrides})
