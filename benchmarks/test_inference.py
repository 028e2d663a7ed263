"""One benchmark per variant x backend x device x batch size, through the same Predictors as `fnnkit bench`.

Grouped by variant, device and batch size, so pytest-benchmark's table compares backends
with each other. pytest-benchmark reports min/median/mean; the percentiles it lacks, and
samples/s, are in each benchmark's ``extra_info`` (``--benchmark-json`` keeps them).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

TARGET_S = 0.25  # timed seconds per case: enough rounds for a stable median, the suite under 10 minutes
MIN_ROUNDS, MAX_ROUNDS = 20, 5000


def test_inference(benchmark, case, bench_config, predictors, test_inputs):
    from fnnkit.backends import get_backend, set_threads
    from fnnkit.bench.measure import batch_of

    ok, reason = get_backend(case.backend).available(case.device)
    if not ok:
        pytest.skip(reason)
    threads = bench_config.threads_for(case.batch)
    predictor = predictors(case, threads)
    set_threads(threads)  # torch's pool is process-wide: put it back to what this case's Predictor was made with
    prepared = predictor.prepare(batch_of(test_inputs, case.batch))

    def call() -> None:
        predictor(prepared)
        predictor.synchronize()

    started = time.perf_counter()
    for _ in range(5):  # compiles for this shape if it must; also an estimate of one call
        call()
    estimate = max((time.perf_counter() - started) / 5, 1e-7)
    rounds = int(min(MAX_ROUNDS, max(MIN_ROUNDS, TARGET_S / estimate)))

    benchmark.group = f"{case.variant}-{case.device}-b{case.batch}"
    with predictor.steady():  # torch.compile may not compile from here on
        benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=max(10, rounds // 10))

    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.data:  # absent with --benchmark-disable
        seconds = np.asarray(stats.stats.data)
        p50, p90, p99 = np.percentile(seconds, (50, 90, 99)) * 1e6
        benchmark.extra_info.update(
            samples_per_s=round(case.batch / (p50 / 1e6), 1),
            p50_us=round(p50, 3),
            p90_us=round(p90, 3),
            p99_us=round(p99, 3),
            threads=threads,
            precision=get_backend(case.backend).precision,
        )
