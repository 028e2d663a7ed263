"""Server-scenario peak rate under a p99 bound, per backend, through MLPerf LoadGen.

One benchmark per backend x device: the timed function is a whole ``--find-peak`` search
(pytest-benchmark's time is the search's wall time, not a latency). The answer is in
``extra_info``: the peak rate LoadGen called VALID with p99 <= the bound, the p99 there, and
the null predictor's peak and offline throughput under the same settings (the SUT's own ceiling).
"""

from __future__ import annotations

import pytest

from fnnkit.backends import BACKENDS, DEVICES

BOUND_MS = 2.0
SEARCH = dict(  # about 10-25 s per backend: 1 s LoadGen runs, a 10% bracket, the peak confirmed by 2 more runs
    scenario="server", find_peak=True, latency_bound_ms=BOUND_MS, min_duration_ms=1000, peak_precision=0.1,
    time_cap_s=30.0, max_batch=64, max_queue_delay_us=0.0,
)  # fmt: skip


def _search(predictor, inputs, logs):
    from fnnkit.bench.scenarios import ScenarioConfig, run_one

    return run_one(predictor, inputs, None, ScenarioConfig(**SEARCH), logs, lambda backend, result: None, "")


@pytest.fixture(scope="session")
def sut_ceiling(test_inputs, tmp_path_factory):
    """The null predictor's peak: what the batcher, threads and LoadGen sustain with no model at all."""
    pytest.importorskip("mlperf_loadgen", reason="MLPerf LoadGen is not installed: pip install mlcommons-loadgen")
    from fnnkit.bench.scenarios import NullPredictor

    return _search(NullPredictor(), test_inputs, tmp_path_factory.mktemp("null-sut"))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_server_peak(benchmark, backend, device, bench_config, test_inputs, sut_ceiling, tmp_path):
    from fnnkit.backends import get_backend
    from fnnkit.store import find_variant_dir

    if device not in bench_config.devices:
        pytest.skip(f"--devices {','.join(bench_config.devices)} leaves out {device}")
    ok, reason = get_backend(backend).available(device)
    if not ok:
        pytest.skip(reason)
    variant = bench_config.variants[0]
    predictor = get_backend(backend).load(find_variant_dir(bench_config.artifacts, variant), device, 1)
    predictor.warmup(1)
    predictor.warmup(SEARCH["max_batch"])
    entry = benchmark.pedantic(_search, args=(predictor, test_inputs, tmp_path), rounds=1, iterations=1)
    final = entry.final
    benchmark.extra_info.update(
        variant=variant,
        scenario="server",
        latency_bound_ms=BOUND_MS,
        peak_qps=entry.peak_qps,
        peak_status=entry.peak_status,
        p99_ms_at_peak=[r.p() for r in entry.at_peak],  # every run at the peak: its confidence
        validity_at_peak=final.validity,
        offline_samples_per_s=entry.calibration[-1].completed_qps,
        null_sut_peak_qps=sut_ceiling.peak_qps,
        null_sut_offline_samples_per_s=sut_ceiling.calibration[-1].completed_qps,
        steps=[(s.target_qps, s.validity, s.p(), s.others_cores) for s in entry.steps],
    )
    assert entry.steps and all(s.validity in ("VALID", "INVALID", "CAPPED") for s in entry.steps)
