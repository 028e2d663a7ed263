"""Load scenarios through MLPerf LoadGen: the queueing property, LoadGen's verdict, accuracy, bad settings.

A slow backend here is a real Predictor that sleeps a fixed time per call: a legitimate double
for a model whose call costs that much, so queueing theory says what LoadGen must see.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from artifactkit import DATASET, copy_variants
from clitools import assert_user_error

pytest.importorskip("mlperf_loadgen", reason="MLPerf LoadGen is not installed: pip install mlcommons-loadgen")

from fnnkit.backends import Predictor, get_backend  # noqa: E402
from fnnkit.bench.scenarios import (  # noqa: E402
    SCENARIOS,
    SCHEMA,
    LoadgenMissing,
    NullPredictor,
    ScenarioConfig,
    find_peak,
    loadgen,
    run_loadgen,
    run_one,
)
from fnnkit.data import preprocess
from fnnkit.errors import ConfigError  # noqa: E402
from fnnkit.metrics import accuracy  # noqa: E402

QUICK = dict(min_duration_ms=800, min_query_count=32, time_cap_s=10.0)  # seconds per LoadGen run, not minutes
VOUCHED = {**QUICK, "min_query_count": 500}  # enough queries for LoadGen's early stopping to vouch for a p99


class OnHost(Predictor):
    """A test backend whose inputs and logits are host tensors already: nothing to prepare or copy."""

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def to_host(self, logits: torch.Tensor) -> torch.Tensor:
        return logits


class SleepPredictor(OnHost):
    """Sleeps ``seconds`` per call, whatever the batch: a backend with a fixed per-call cost."""

    def __init__(self, seconds: float) -> None:
        super().__init__("sleep", "cpu", 1)
        self.seconds = seconds

    def __call__(self, prepared: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return torch.zeros(len(prepared), 10)


class ReversingPredictor(OnHost):
    """A real backend whose rows come back in reverse order: the mix-up a broken batcher would make."""

    def __init__(self, inner: Predictor) -> None:
        super().__init__("reversed", "cpu", 1)
        self.inner = inner

    def __call__(self, prepared: torch.Tensor) -> torch.Tensor:
        return self.inner.predict(prepared).flip(0)


@pytest.fixture(scope="module")
def folder(exported_root, tmp_path_factory) -> Path:
    """A private copy of the shared export of variant C (the issue's example): its ONNX file among others."""
    return copy_variants(exported_root, tmp_path_factory.mktemp("scenarios"), "C") / DATASET / "C"


@pytest.fixture(scope="module")
def test_set(sample_data):
    return preprocess(sample_data.test_x), sample_data.test_y


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "field, value, flag",
    [
        ("qps", 0, "--qps"),
        ("qps", -5.0, "--qps"),
        ("qps", float("nan"), "--qps"),
        ("latency_bound_ms", 0, "--latency-bound-ms"),
        ("latency_bound_ms", -1.0, "--latency-bound-ms"),
        ("max_batch", 0, "--max-batch"),
        ("workers", 0, "--workers"),
        ("max_queue_delay_us", -1.0, "--max-queue-delay-us"),
        ("time_cap_s", 0, "--time-cap-s"),
        ("scenario", "burst", "scenario"),
    ],
)
def test_bad_settings_name_the_flag(field, value, flag):
    with pytest.raises(ConfigError, match=flag):
        ScenarioConfig(**{field: value})


def test_find_peak_is_for_the_server_scenario_only():
    with pytest.raises(ConfigError, match="--find-peak"):
        ScenarioConfig(scenario="offline", find_peak=True)


def test_a_run_longer_than_its_cap_is_refused():
    with pytest.raises(ConfigError, match="--time-cap-s"):
        ScenarioConfig(min_duration_ms=5000, time_cap_s=2)


class _Threshold:
    def __init__(self, valid: bool) -> None:
        self.valid = valid


def test_search_brackets_the_threshold_within_precision():
    peak, steps = find_peak(lambda q: _Threshold(q <= 3000), 1000, 10, 1e6, 0.05, 20)
    assert 3000 / 1.05 <= peak <= 3000
    assert [q for q, _ in steps][:3] == [1000, 2000, 4000]  # doubles until LoadGen says INVALID, then bisects


def test_search_reports_no_rate_when_even_the_floor_fails():
    peak, steps = find_peak(lambda q: _Threshold(False), 648, 10, 1e6, 0.05, 20)  # 648 / 4^3 = 10.125
    rates = [q for q, _ in steps]
    assert peak is None and rates[-1] <= 10 * 1.05
    assert all(b < a / 1.05 for a, b in zip(rates, rates[1:], strict=False))  # 10.125 then 10 would be one rate twice


# --------------------------------------------------------------------------- LoadGen on a slow backend


@pytest.mark.slow  # two LoadGen server runs of their minimum duration: ~3.5 s
def test_p99_grows_with_the_queue_and_loadgen_calls_overload_invalid(test_set, tmp_path):
    """1 ms per call, one call at a time: 1,000 samples/s at most. At 250/s the queue is short; at 1,500/s it grows."""
    inputs, _ = test_set
    config = ScenarioConfig(scenario="server", latency_bound_ms=25, max_batch=1, max_queue_delay_us=0, **VOUCHED)
    light = run_loadgen(SleepPredictor(0.001), inputs, config, tmp_path / "light", qps=250)
    heavy = run_loadgen(SleepPredictor(0.001), inputs, config, tmp_path / "heavy", qps=1500)
    assert light.valid, light.reasons
    assert light.p() >= 1.0  # no sample completes faster than the model
    assert heavy.validity == "INVALID" and "latency bound not met" in heavy.reasons
    assert heavy.p() > 10 * light.p()  # the queue, not the model, sets the tail
    assert (tmp_path / "heavy" / "mlperf_log_summary.txt").is_file()
    assert (tmp_path / "heavy" / "mlperf_log_detail.txt").is_file()


def test_batching_absorbs_the_same_overload(test_set, tmp_path):
    """The same 1 ms backend at 1,500/s meets the bound once the batcher may group 32 samples per call."""
    inputs, _ = test_set
    config = ScenarioConfig(scenario="server", latency_bound_ms=25, max_batch=32, max_queue_delay_us=1000, **VOUCHED)
    result = run_loadgen(SleepPredictor(0.001), inputs, config, tmp_path / "batched", qps=1500)
    assert result.valid, result.reasons
    assert result.mean_batch > 1.5


@pytest.mark.slow  # a LoadGen search that runs to its cap: ~7 s
def test_a_bound_no_rate_meets_ends_in_a_clear_result(test_set, tmp_path):
    inputs, labels = test_set
    config = ScenarioConfig(scenario="server", latency_bound_ms=1, find_peak=True, min_qps=20, max_batch=1, **QUICK)
    entry = run_one(SleepPredictor(0.004), inputs, None, config, tmp_path, lambda b, r: None, "C")
    assert entry.peak_qps is None
    assert entry.calibration[-1].completed_qps < 300  # 4 ms a call, one at a time: at most 250 samples/s
    rates = [s.target_qps for s in entry.steps]
    assert rates == sorted(rates, reverse=True) and rates[-1] == 20  # down to the floor, then it gives up
    assert all(s.validity == "INVALID" for s in entry.steps)


@pytest.mark.slow  # a LoadGen run held to its 2 s cap
def test_the_time_cap_ends_a_hopeless_run(test_set, tmp_path):
    """50 ms per call at 200/s: LoadGen stops issuing at the cap and the queue is answered; never a hang."""
    inputs, _ = test_set
    config = ScenarioConfig(scenario="server", max_batch=1, min_duration_ms=500, min_query_count=1, time_cap_s=1)
    started = time.perf_counter()
    result = run_loadgen(SleepPredictor(0.05), inputs, config, tmp_path / "capped", qps=200)
    assert time.perf_counter() - started < 15
    assert result.validity in ("CAPPED", "INVALID") and not result.valid


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_runs_through_the_batcher(scenario, test_set, tmp_path):
    """Every scenario of the registry: LoadGen's latencies and a samples/s rate come back, with its logs."""
    inputs, _ = test_set
    config = ScenarioConfig(scenario=scenario, max_batch=16, **QUICK)
    result = run_loadgen(NullPredictor(), inputs, config, tmp_path / scenario, qps=2000)
    assert result.completed_qps and result.completed_qps > 0
    assert 0 < result.latency_ns["50.00"] <= result.latency_ns["99.00"]
    assert result.mean_batch >= (8 if scenario == "multi-stream" else 1)  # a multi-stream query is 8 samples
    assert (tmp_path / scenario / "mlperf_log_detail.txt").is_file()


# --------------------------------------------------------------------------- accuracy and determinism


def test_accuracy_through_the_scenario_matches_direct_scoring(folder, test_set, tmp_path):
    inputs, labels = test_set
    eager = get_backend("eager").load(folder, "cpu", 1)
    config = ScenarioConfig(scenario="offline", max_batch=64, **QUICK)
    result = run_loadgen(eager, inputs, config, tmp_path / "acc", qps=50_000, labels=labels)
    assert result.accuracy == pytest.approx(accuracy(eager.predict, inputs, labels), abs=1e-9)
    mixed = run_loadgen(ReversingPredictor(eager), inputs, config, tmp_path / "mixed", qps=50_000, labels=labels)
    assert mixed.accuracy < result.accuracy - 20  # responses sent to the wrong queries are caught


def test_same_seed_same_arrivals(test_set, tmp_path):
    inputs, labels = test_set
    orders = []
    for run, seed in enumerate((7, 7, 8)):
        config = ScenarioConfig(scenario="offline", max_batch=16, seed=seed, **QUICK)
        run_loadgen(NullPredictor(), inputs, config, tmp_path / str(run), qps=50_000, labels=labels)
        entries = json.loads((tmp_path / str(run) / "mlperf_log_accuracy.json").read_text())
        orders.append([e["qsl_idx"] for e in entries])
    assert orders[0] == orders[1]
    assert orders[0] != orders[2]


# --------------------------------------------------------------------------- the command


def fnnkit_error_line(result: tuple[int, str], message: str) -> None:
    """A user mistake reported by fnnkit itself (its one ``error:`` line), not a usage screen or a traceback."""
    assert_user_error(result, message)
    line = next(line for line in result[1].splitlines() if message in line)
    assert line.startswith("error: "), result[1]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--qps", "0"], "--qps must be a positive number"),
        (["--latency-bound-ms", "-2"], "--latency-bound-ms must be a positive number"),
        (["--max-batch", "0"], "--max-batch must be a positive integer"),
        (["--qps", "fast"], "--qps must be a positive number"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_cli_bad_settings_are_one_clear_error(folder, extra, message, cli):
    root = folder.parent.parent
    result = cli("bench", "--scenario", "server", "-v", "C", "-b", "eager", "--artifacts", str(root), *extra)
    fnnkit_error_line(result, message)


def test_cli_scenario_options_need_a_scenario(folder, cli):
    result = cli("bench", "-v", "C", "--qps", "100", "--artifacts", str(folder.parent.parent))
    fnnkit_error_line(result, "need --scenario")


@pytest.mark.slow  # ~10 s: three searches of 1-5 runs of 0.5 s (null SUT, eager, onnxruntime), two accuracy runs
def test_cli_find_peak_writes_steps_verdicts_logs_and_plot(folder, tmp_path, cli):
    out = tmp_path / "out.json"
    code, text = cli(
        "bench", "--scenario", "server", "-v", "C", "-b", "eager,onnxruntime", "--device", "cpu", "--find-peak",
        "--latency-bound-ms", "20", "--qps", "1000", "--min-qps", "500", "--max-qps", "4000",
        "--min-duration-ms", "300", "--peak-precision", "0.5",
        "--json", str(out), "--plot", str(tmp_path / "out.png"), "--artifacts", str(folder.parent.parent),
    )  # fmt: skip
    assert code == 0, text
    run = json.loads(out.read_text())
    assert run["schema"] == SCHEMA and run["config"]["find_peak"] is True and run["environment"]["versions"]["torch"]
    assert [r["backend"] for r in run["results"]] == ["eager", "onnxruntime"]
    for entry in [run["overhead"], *run["results"]]:
        assert entry["steps"] and all(s["validity"] in ("VALID", "INVALID", "CAPPED") for s in entry["steps"])
        valid = [s["target_qps"] for s in entry["steps"] if s["validity"] == "VALID"]
        assert entry["peak_qps"] == (max(valid) if valid else None)
        assert all(Path(s["log_dir"], "mlperf_log_summary.txt").is_file() for s in entry["steps"])
    assert run["loadgen"]["version"]
    assert run["results"][0]["accuracy"]["accuracy"] > 80  # AccuracyOnly through the batcher, scored on labels
    assert (tmp_path / "out.png").read_bytes()[:4] == b"\x89PNG"
    assert "Peak rate with p99 ≤ 20 ms" in text and "SUT overhead" in text
    assert all(entry["calibration"][-1]["completed_qps"] > 0 for entry in [run["overhead"], *run["results"]])


def test_missing_loadgen_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlperf_loadgen", None)  # what `import` sees when the wheel is not installed
    with pytest.raises(LoadgenMissing, match="pip install mlcommons-loadgen"):
        loadgen()


def test_cli_scenario_takes_one_variant(folder, cli):
    result = cli("bench", "--scenario", "offline", "-v", "all", "--artifacts", str(folder.parent.parent))
    fnnkit_error_line(result, "one variant at a time")
