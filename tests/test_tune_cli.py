"""`fnnkit tune` as a user types it: bad options are one line; a real (tiny) tune writes its record and PNG."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from artifactkit import DATASET
from clitools import assert_user_error
from test_serve import free_port, get, start_serve, stop, wait_healthy

from fnnkit.export.triton_check import parse_config
from fnnkit.serve.app_config import read_serve_file
from fnnkit.tune.deploy import write_serve


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--min-accuracy", "101"], "--min-accuracy must be"),
        (["--budget-s", "5"], "--budget-s must be"),
        (["--latency-bound-ms", "nan"], "--latency-bound-ms must be"),
        (["--backends", "eager,nosuch"], "nosuch"),
        (["--device", "tpu"], "tpu"),
        (["--variant", "Z"], "Z"),
    ],
)
def test_bad_options_are_one_clear_error(served_root, extra, message, cli):
    assert_user_error(cli("tune", "--artifacts", str(served_root), *extra), message)


def test_a_floor_no_backend_meets_times_nothing(served_root, tmp_path, cli):
    out = tmp_path / "t.json"
    code, text = cli(
        "tune", "-v", "C", "--backends", "onnxruntime,openvino", "--min-accuracy", "100", "--json", str(out),
        "--artifacts", str(served_root),
    )  # fmt: skip
    record = json.loads(out.read_text())
    assert code == 1 and record["pick"] is None and record["trials"] == [] and record["votes"] == []
    assert all("below --min-accuracy 100%" in why for why in record["dropped"].values()), record["dropped"]
    assert "not timed: onnxruntime" in text and "no deployment confirmed a peak" in text


@pytest.mark.slow  # ~25 s: one short LoadGen peak search (offline calibration + ~10 runs of 2 s)
def test_a_tiny_tune_writes_record_table_plot_and_triton_repository(served_root, tmp_path, cli):
    out, triton, serve_file = tmp_path / "tune.json", tmp_path / "triton", tmp_path / "serve.json"
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps(_served_record(16)))  # a known-surface tune at p99 <= 1 ms, its pick onnxruntime
    code, text = cli(
        "tune", "-v", "C", "--backends", "onnxruntime,onnxruntime-int8", "--latency-bound-ms", "20",
        "--budget-s", "10", "--json", str(out), "--write-triton", str(triton), "--write-serve", str(serve_file),
        "--compare", str(earlier), "--artifacts", str(served_root),
    )  # fmt: skip
    record = json.loads(out.read_text())
    assert "onnxruntime-int8" in record["dropped"]  # dynamic int8: its answers depend on the batch
    assert [t["deployment"]["backend"] for t in record["trials"]] == ["onnxruntime"]
    assert code == 0 and record["pick"]["peak_qps"] > 100, text
    assert record["out_of_budget"] and "budget spent" in text and "pick: onnxruntime" in text
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "tune.loadgen").is_dir()
    # the comparison: onnxruntime's peak then and now, and the other bound named
    assert f"Change vs {earlier}" in text and "the pick is the same deployment" not in text, text
    assert "not comparable:" in text and "another latency bound: earlier p99 <= 1 ms, now 20 ms" in text
    # the repository: Triton's schema parses the config, and its model runs in ONNX Runtime by the config's names
    picked = record["pick"]["deployment"]
    config = parse_config(triton / "fnnkit_mnist-sample_C" / "config.pbtxt")
    assert config.max_batch_size == picked["max_batch"] and config.instance_group[0].count == picked["workers"]
    assert config.dynamic_batching.max_queue_delay_microseconds == picked["max_queue_delay_us"]
    session = ort.InferenceSession(str(triton / "fnnkit_mnist-sample_C" / "1" / "model.onnx"))
    (logits,) = session.run([config.output[0].name], {config.input[0].name: np.zeros((3, 784), np.float32)})
    assert logits.shape == (3, 10)
    # the serve config: `fnnkit serve --config` runs the picked backend with the picked workers
    written = json.loads(serve_file.read_text())
    assert (written["backend"], written["workers"]) == (picked["backend"], picked["workers"])
    url = f"http://127.0.0.1:{(port := free_port())}/fnnkit_mnist-sample_C"
    process = start_serve("--config", str(serve_file), "--port", str(port), "--artifacts", str(served_root))
    try:
        wait_healthy(url, 60, process)
        assert get(f"{url}/metadata")[1]["backend"] == "onnxruntime"
    finally:
        code, said = stop(process)
    assert code == 0 and "was tuned on another CPU" not in said, said


def test_a_serve_config_round_trips_and_hostile_ones_are_one_line(tmp_path, cli):
    from tunekit import KnownJudge, gate, space

    from fnnkit.tune.run import TuneConfig, record
    from fnnkit.tune.search import tune

    result = tune(space(), KnownJudge(), 1500, gate=gate)
    card = {"variant": {"name": "C"}, "dataset": {"name": "mnist"}}
    made = json.loads(json.dumps(record(TuneConfig(), card, result, {"fast": 96.0, "mid": 96.0, "slow": 96.0}, 1, 0)))
    path = tmp_path / "serve.json"
    write_serve(made, path)
    config = read_serve_file(path)
    assert (config.backend, config.workers, config.max_batch, config.batch_wait_ms) == ("fast", 2, 16, 0.05)
    for bad, field in [
        ({"workers": 0}, "workers"),
        ({"workers": True}, "workers"),
        ({"variant": "C; rm"}, "variant"),
        ({"batch_wait_ms": "nan"}, "batch_wait_ms"),
        ({"extra": 1}, "extra"),
        ({"schema": "x/1"}, "schema"),
    ]:
        (tmp_path / "bad.json").write_text(json.dumps({**json.loads(path.read_text()), **bad}))
        assert_user_error(cli("serve", "--config", str(tmp_path / "bad.json")), "--config", field)


def _served_record(max_batch: int) -> dict:
    """A tune record whose pick is an onnxruntime deployment of the served model, at ``max_batch``."""
    from tunekit import tune_record

    text = json.dumps(tune_record()).replace('"backend": "fast"', '"backend": "onnxruntime"')
    record = json.loads(text.replace('"max_batch": 16', f'"max_batch": {max_batch}'))
    return {**record, "dataset": "mnist-sample"}


def test_write_triton_says_whether_onnx_runtime_was_not_measured_or_found_nothing(served_root, tmp_path):
    """A tune whose ONNX Runtime searches confirmed no peak must not be told to include ONNX Runtime."""
    from fnnkit.errors import ConfigError
    from fnnkit.tune import deploy

    record = _served_record(16)
    for trial in record["trials"]:
        if trial["deployment"]["backend"] == "onnxruntime":
            trial["peak_qps"] = None
    record["pick"] = {**record["pick"], "deployment": {**record["pick"]["deployment"], "backend": "aoti"}}
    with pytest.raises(ConfigError, match="onnxruntime measured, but none confirmed a peak under the bound"):
        deploy.write_triton(record, served_root / "mnist-sample" / "C", tmp_path / "triton")
    never = {**record, "trials": [t for t in record["trials"] if t["deployment"]["backend"] != "onnxruntime"]}
    never["votes"] = [v for v in record["votes"] if v["deployment"]["backend"] != "onnxruntime"]
    with pytest.raises(ConfigError, match="measured no ONNX Runtime deployment .*include one in --backends"):
        deploy.write_triton(never, served_root / "mnist-sample" / "C", tmp_path / "triton")
    assert not (tmp_path / "triton").exists()


def _tree(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_write_triton_checks_the_staged_model_before_it_replaces_the_earlier_one(served_root, tmp_path, monkeypatch):
    from fnnkit.errors import ConfigError
    from fnnkit.export import triton_check
    from fnnkit.tune import deploy

    folder, out = served_root / "mnist-sample" / "C", tmp_path / "triton"
    _, model = deploy.write_triton(_served_record(16), folder, out)
    assert parse_config(model.folder / "config.pbtxt").max_batch_size == 16
    earlier, live = _tree(out), _tree(model.folder)
    checked = []

    def failing_check(staged, name):
        checked.append((staged, _tree(model.folder) == live))  # the live model is untouched while its stage is checked
        rows = triton_check.check_model(staged, name)
        assert all(ok for _, _, ok, _ in rows), rows  # the staged folder itself checks: the failure is the test's
        return [*rows, (staged / "config.pbtxt", "config", False, f"{staged}/config.pbtxt: refused for the test")]

    monkeypatch.setattr(deploy, "check_model", failing_check)
    with pytest.raises(ConfigError, match="nothing there was replaced") as caught:
        deploy.write_triton(_served_record(32), folder, out)
    assert checked and checked[0][1] and checked[0][0].parent == out and checked[0][0].name.startswith(".")
    assert str(model.folder / "config.pbtxt") in str(caught.value) and ".stage-" not in str(caught.value)
    assert _tree(out) == earlier and not checked[0][0].exists()  # earlier model whole; the stage removed
    monkeypatch.undo()
    deploy.write_triton(_served_record(32), folder, out)  # a passing check replaces it
    assert parse_config(model.folder / "config.pbtxt").max_batch_size == 32


def test_every_tune_run_runs_as_bench_runs_it_in_a_fresh_process(served_root, tmp_path, monkeypatch):
    """A tune's LoadGen runs, short and full, are bench's: each in a fresh process, from a relative artifacts path
    (in one shared process a run's tail grew with the runs before it, which ranked backends by their turn)."""
    from fnnkit.bench.scenarios import ScenarioConfig
    from fnnkit.bench.scenarios.runs import FreshProcessRuns
    from fnnkit.data import load_test_arrays
    from fnnkit.tune.judge import LoadgenJudge
    from fnnkit.tune.search import Deployment

    monkeypatch.chdir(served_root)  # relative paths, as a user's cwd gives them; the logs outside the shared root
    inputs, _ = load_test_arrays(DATASET)
    logs = Path(os.path.relpath(tmp_path / "tune-logs", served_root))
    judge = LoadgenJudge(Path(DATASET, "C"), inputs, ScenarioConfig(), "cpu", logs)
    assert judge.config(Deployment("onnxruntime"), "full").fresh_process
    assert judge.config(Deployment("onnxruntime"), "short").fresh_process
    runs = judge.runs_for("onnxruntime")
    assert isinstance(runs, FreshProcessRuns)
    quick = ScenarioConfig(qps=5000, latency_bound_ms=1000, min_duration_ms=200, min_query_count=600, time_cap_s=10)
    result = runs.run(quick, judge.log_root / "one", 5000.0)
    # the run itself is the point here, not its verdict: a 0.2 s run on a shared machine may miss any p99 bound
    assert result.mode == "performance" and result.completed_qps > 0 and result.p() is not None
    assert (tmp_path / "tune-logs" / "one" / "mlperf_log_detail.txt").is_file()
