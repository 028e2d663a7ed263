"""A plausible benchmark row for tests of the harness's bookkeeping (stats, compare, schema)."""

from __future__ import annotations

from fnnkit.bench import BenchRow


def row(**overrides) -> BenchRow:
    base = dict(
        variant="A", backend="eager", device="cpu", precision="fp32", batch_size=1, threads=1, p50_us=10.0,
        p90_us=11.0, p99_us=12.0, mean_us=10.2, min_us=9.0, spread=0.05, samples=100, measure_s=0.1, stable=True,
        others_cores=0.0, throughput=1e5, gflops=1.0, load_s=0.1, first_call_ms=1.0, accuracy=90.0,
        eager_accuracy=90.0, max_abs_diff=0.0, agreement=100.0, agrees=True, peak_rss_mb=100.0, rss_added_mb=1.0,
        peak_device_mb=None,
    )  # fmt: skip
    return BenchRow(**{**base, **overrides})
