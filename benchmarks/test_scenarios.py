"""Server-scenario peak rate under a p99 bound, per backend, through MLPerf LoadGen.

One benchmark per backend x device: the timed function is a whole ``--find-peak`` search, each
LoadGen run in a fresh process as ``fnnkit bench load`` runs it (pytest-benchmark's time is the
search's wall time, process starts included, not a latency). The answer is in
``extra_info``: the peak rate LoadGen called VALID with p99 <= the bound, the p99 there, and
the null predictor's peak and offline throughput under the same settings (the SUT's own ceiling).
"""

from __future__ import annotations

import pytest

from fnnkit.backends import BACKENDS, DEVICES

BOUND_MS = 2.0
SEARCH = dict(  # about 10-30 s per backend (ONNX Runtime, C: 28 s): 1 s LoadGen runs, a 10% bracket, 2 confirmations
    scenario="server", find_peak=True, latency_bound_ms=BOUND_MS, min_duration_ms=1000, peak_precision=0.1,
    time_cap_s=30.0, max_batch=64, max_queue_delay_us=0.0,
)  # fmt: skip


def _search(runs, logs):
    """``fnnkit bench load --find-peak``'s search, each LoadGen run in a fresh process as the command runs it."""
    from fnnkit.bench.scenarios import ScenarioConfig, run_one

    return run_one(runs, ScenarioConfig(**SEARCH), logs, lambda backend, result, scenario: None, "")


def _runs(backend, device, bench_config, test_inputs, scratch):
    from fnnkit.bench.scenarios import FreshProcessRuns
    from fnnkit.store import find_variant_dir

    folder = find_variant_dir(bench_config.artifacts, bench_config.variants[0], bench_config.dataset).absolute()
    return FreshProcessRuns(backend, folder, device, test_inputs, None, scratch)


@pytest.fixture(scope="session")
def scratch(tmp_path_factory):
    """Where the test inputs are written once for every run's process."""
    return tmp_path_factory.mktemp("scenario-inputs")


@pytest.fixture(scope="session")
def sut_ceiling(bench_config, test_inputs, scratch, tmp_path_factory):
    """The null predictor's peak: what the batcher, threads and LoadGen sustain with no model at all."""
    pytest.importorskip("mlperf_loadgen", reason="MLPerf LoadGen is not installed: pip install mlcommons-loadgen")
    from fnnkit.bench.scenarios.runs import NULL_BACKEND

    runs = _runs(NULL_BACKEND, "cpu", bench_config, test_inputs, scratch)
    return _search(runs, tmp_path_factory.mktemp("null-sut"))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_server_peak(benchmark, backend, device, bench_config, test_inputs, sut_ceiling, scratch, tmp_path):
    from fnnkit.backends import get_backend

    if device not in bench_config.devices:
        pytest.skip(f"--devices {','.join(bench_config.devices)} leaves out {device}")
    ok, reason = get_backend(backend).available(device)
    if not ok:
        pytest.skip(reason)
    variant = bench_config.variants[0]
    runs = _runs(backend, device, bench_config, test_inputs, scratch)
    entry = benchmark.pedantic(_search, args=(runs, tmp_path), rounds=1, iterations=1)
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
