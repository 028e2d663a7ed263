"""The benchmark harness: statistics on known samples, the gate, the recommendation, the schema,
real (short) runs of every backend available here, and the CLI's answers to bad input."""

from __future__ import annotations

import inspect
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from artifactkit import DATASET, PT2_VARIANT, copy_variants
from benchrows import row
from clitools import fnnkit_in_process as fnnkit
from pydantic import ValidationError

from fnnkit.backends import BACKENDS
from fnnkit.bench import (
    SCHEMA,
    BenchConfig,
    BenchRun,
    InProcess,
    RunHeader,
    compare_runs,
    load_run,
    parse_batch_sizes,
    recommend,
    run_bench,
    save_run,
    write_csv,
)
from fnnkit.bench.stats import LatencyStats, cpu_timer, quarter_drift, time_calls
from fnnkit.cli.plots import write_plot
from fnnkit.errors import ArtifactError, BackendUnavailable, ConfigError

CPU_BACKENDS = [name for name, b in BACKENDS.items() if b.in_all and b.available("cpu")[0]]  # what `all` runs
QUICK = {"min_time_s": 0.02, "max_time_s": 0.05, "warmup_rounds": 2, "warmup_s": 0.005}


@pytest.fixture(scope="module")
def root(exported_root, tmp_path_factory) -> Path:
    """Private copies of the shared exports of A, E and ``PT2_VARIANT`` (the one with a .pt2 for aoti)."""
    return copy_variants(exported_root, tmp_path_factory.mktemp("bench") / "artifacts", "A", PT2_VARIANT, "E")


@pytest.fixture(scope="module")
def real_run(root):
    """One short in-process run of every CPU backend on ``PT2_VARIANT``, batch 1 and 64 (a fixed wait policy:
    no 0.3 s probe per backend; ``choose`` is tested on its own)."""
    config = BenchConfig(
        variants=(PT2_VARIANT,), devices=("cpu",), batch_sizes=(1, 64), artifacts=str(root), wait_policy="passive",
        **QUICK,
    )  # fmt: skip
    return run_bench(config, launcher=InProcess())


# --------------------------------------------------------------------------- statistics


def test_latency_stats_on_known_samples():
    stats = LatencyStats.from_ns(np.arange(1, 101) * 1000)  # 1..100 µs
    assert stats.p50_us == pytest.approx(50.5)
    assert stats.p90_us == pytest.approx(90.1)
    assert stats.p99_us == pytest.approx(99.01)
    assert stats.min_us == 1.0 and stats.samples == 100
    assert stats.spread == pytest.approx((75.25 - 25.75) / 50.5)
    assert stats.distribution_us["p100"] == 100.0


def test_quarter_drift_sees_a_slowdown_half_way():
    assert quarter_drift([100] * 40) == 0.0
    assert quarter_drift([100] * 20 + [150] * 20) == pytest.approx(0.5 / 1.25)
    assert quarter_drift([1, 2, 3]) == float("inf")  # too few samples to judge


def test_time_calls_stops_when_stable_or_at_the_budget():
    # a few microseconds of fixed work: an empty call's ~100 ns is at the timer's resolution, where the
    # quarters' medians can differ by half without anything having changed
    samples, stable, seconds = time_calls(
        lambda: sum(range(500)), cpu_timer, min_time_s=0.01, max_time_s=1.0, stability=0.5
    )
    assert stable and seconds < 0.5 and len(samples) >= 20

    def slower_and_slower(state=[0]):  # noqa: B006 - a counter the closure keeps
        state[0] += 1
        time.sleep(state[0] * 1e-5)

    samples, stable, seconds = time_calls(
        slower_and_slower, cpu_timer, min_time_s=0.01, max_time_s=0.05, stability=0.01
    )
    assert not stable and 0.05 <= seconds < 0.5


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("text, expected", [("1,64,1024", (1, 64, 1024)), ("64, 1,64", (1, 64))])
def test_batch_sizes_parse(text, expected):
    assert parse_batch_sizes(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "1,abc", "", "1.5"])
def test_bad_batch_sizes_are_refused(text):
    with pytest.raises(ConfigError, match="--batch-sizes"):
        parse_batch_sizes(text)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"threads": 0}, "threads"),
        ({"threads": True}, "threads"),
        ({"min_time_s": 0}, "min_time_s"),
        ({"min_time_s": float("nan")}, "min_time_s"),
        ({"min_time_s": 601.0}, "min_time_s"),
        ({"accuracy_tolerance": 101.0}, "accuracy_tolerance"),
        ({"cores": 0}, "cores"),
        ({"surprise": 1}, "surprise"),
        ({"backends": ("tensorflow",)}, "unknown backend 'tensorflow'"),
        ({"variants": ("Z",)}, "unknown variant 'Z'"),
        ({"devices": ("tpu",)}, "unknown device 'tpu'"),
        ({"batch_sizes": (0,)}, "--batch-sizes"),
        ({"min_time_s": 1.0, "max_time_s": 0.5}, "max_time_s"),
    ],
)
def test_config_is_validated_at_construction(overrides, message):
    with pytest.raises(ValidationError, match=message):
        BenchConfig(**overrides)


def test_auto_threads_one_for_tiny_batches_all_cores_above():
    config = BenchConfig(cores=4)
    assert [config.threads_for(b) for b in (1, 64, 65, 8192)] == [1, 1, 4, 4]
    assert BenchConfig(threads=2, cores=4).threads_for(1) == 2


# --------------------------------------------------------------------------- recommendation and gate


def test_recommendation_is_the_fastest_backend_that_matches_eager():
    rows = [
        row(backend="eager", p50_us=20.0),
        row(backend="onnxruntime", p50_us=6.0),
        row(backend="broken", p50_us=1.0, agrees=False, max_abs_diff=0.5),
        row(backend="onnxruntime-int8", precision="int8", p50_us=5.0, accuracy=89.9, max_abs_diff=0.02),
        row(backend="unmeasured", p50_us=0.5, accuracy=None),
    ]
    (best,) = recommend(rows)
    assert (best.backend, best.runner_up) == ("onnxruntime", "eager")
    (lenient,) = recommend(rows, tolerance_points=0.1)
    assert lenient.backend == "onnxruntime-int8"
    (none,) = recommend([row(agrees=False)])
    assert none.backend is None


def _run_with(rows):
    header = RunHeader(schema=SCHEMA, kind="latency", run_id="id", created="now", environment={"cpu": "x"}, config={})
    return BenchRun(header=header, threads={"policy": "p"}, isolation="in-process", ceilings=[], rows=rows)


def test_gate_flags_rows_slower_than_the_threshold():
    baseline = _run_with([row(batch_size=1, p50_us=10.0), row(batch_size=64, p50_us=100.0), row(backend="gone")])
    current = _run_with([row(batch_size=1, p50_us=10.5), row(batch_size=64, p50_us=120.0), row(backend="new")])
    result = compare_runs(current, baseline, threshold_pct=10.0)
    assert [(c.batch_size, c.change_pct, c.regression) for c in result.changes] == [(1, 5.0, False), (64, 20.0, True)]
    assert len(result.regressions) == 1
    assert result.only_current == [("A", "new", "cpu", 1)] and result.only_baseline == [("A", "gone", "cpu", 1)]
    with pytest.raises(ConfigError, match="--fail-threshold"):
        compare_runs(current, baseline, threshold_pct=0)


def test_the_run_header_says_whether_the_code_differs_from_its_commit(tmp_path):
    """A run measured on changed code names its commit and says it was changed: it is not that commit's result."""
    import shutil
    import subprocess

    from fnnkit.env import git_state

    if shutil.which("git") is None:
        pytest.skip("git is not installed here")
    package = tmp_path / "repo" / "fnnkit"
    package.mkdir(parents=True)
    assert git_state(package) == (None, None)  # not a checkout: unknown, not "clean"
    (package / "a.py").write_text("x = 1\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
        subprocess.run([*git, *args], cwd=package.parent, check=True, capture_output=True, timeout=30)
    commit, dirty = git_state(package)
    assert dirty is False and len(commit or "") == 40
    (package / "a.py").write_text("x = 2\n")
    assert git_state(package) == (commit, True)
    (package / "a.py").write_text("x = 1\n")
    (package / "b.py").write_text("y = 1\n")  # a new module counts as well
    assert git_state(package) == (commit, True)
    (package.parent / "elsewhere.txt").write_text("not fnnkit")  # outside the package: not its code
    (package / "b.py").unlink()
    assert git_state(package) == (commit, False)


# --------------------------------------------------------------------------- schema


def test_saved_run_round_trips(real_run, tmp_path):
    path = save_run(real_run, tmp_path / "run.json")
    again = load_run(path)
    assert again.rows == real_run.rows and again.recommendations == real_run.recommendations
    assert json.loads(path.read_text())["header"]["schema"] == SCHEMA


def test_bad_baselines_are_refused_clearly(real_run, tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        load_run(tmp_path / "nope.json")
    (tmp_path / "text.json").write_text("not json {")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_run(tmp_path / "text.json")
    payload = json.loads(save_run(real_run, tmp_path / "run.json").read_text())
    (tmp_path / "other.json").write_text(json.dumps({**payload, "header": {**payload["header"], "schema": "x/0"}}))
    with pytest.raises(ArtifactError, match="schema 'x/0'"):
        load_run(tmp_path / "other.json")
    del payload["rows"][0]["latency"]["p50_us"]
    (tmp_path / "edited.json").write_text(json.dumps(payload))
    with pytest.raises(ArtifactError, match=r"rows\.0\.latency\.p50_us: Field required"):
        load_run(tmp_path / "edited.json")


# --------------------------------------------------------------------------- real runs


def test_real_run_measures_every_cpu_backend_and_they_agree(real_run):
    measured = {r.backend for r in real_run.rows}
    assert measured == set(CPU_BACKENDS)
    in_all = {name for name, b in BACKENDS.items() if b.in_all}  # torchscript-lite runs only when named
    assert {s.backend for s in real_run.skipped} == in_all - set(CPU_BACKENDS)
    assert all(s.reason for s in real_run.skipped)
    for r in real_run.rows:
        lat = r.latency
        assert lat.p50_us > 0 and lat.p90_us >= lat.p50_us and lat.p99_us >= lat.p90_us and lat.samples >= 20
        assert r.throughput == pytest.approx(r.batch_size / (lat.p50_us / 1e6))
        assert r.setup.recompiles == 0 and r.versus.speedup_vs_eager
        # a share, or the flag for a row timed above its ceiling on a noisy machine: never both, never neither
        assert (r.versus.ceiling_share is not None) != r.versus.ceiling_suspect, r.versus
        assert r.parity.agrees is True, r
        if r.precision == "fp32":
            assert r.parity.accuracy == r.parity.eager_accuracy and r.parity.max_abs_diff <= 1e-4
    assert {(c.device, c.threads) for c in real_run.ceilings} == {("cpu", 1)}
    assert all(c.samples == 8 and c.spread >= 0 for c in real_run.ceilings)  # 4 repetitions before, 4 after
    assert {(r.batch_size, r.backend is not None) for r in real_run.recommendations} == {(1, True), (64, True)}
    for r in real_run.rows:  # in this process: ONNX Runtime as the probe chose, OpenMP as the process started
        assert r.wait_policy in ({"passive"} if r.backend.startswith("onnxruntime") else
                                 {"runtime default"} if r.backend.startswith("openvino") else
                                 {"spin", "passive", "OpenMP default"}), r  # fmt: skip


def test_auto_wait_policy_spins_on_a_quiet_machine_and_sleeps_on_a_busy_one():
    from fnnkit.bench.waiting import busy_elsewhere, choose

    assert choose("auto", others_cores=0.05) == "spin"
    assert choose("auto", others_cores=1.0) == "passive"
    assert choose("passive", others_cores=0.0) == "passive" and choose("spin", others_cores=2.0) == "spin"
    assert busy_elsewhere(0.05) >= 0
    with pytest.raises(ValidationError, match="wait_policy"):
        BenchConfig(wait_policy="sometimes")


def test_csv_and_plot_are_written(real_run, tmp_path):
    csv_text = write_csv(real_run, tmp_path / "run.csv").read_text().splitlines()
    assert csv_text[0].startswith("run_id,variant,backend,device") and len(csv_text) == len(real_run.rows) + 1
    assert "latency.p50_us" in csv_text[0].split(",") and "parity.agrees" in csv_text[0].split(",")
    png = write_plot(real_run, tmp_path / "run.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


# --------------------------------------------------------------------------- the CLI


QUICK_FLAGS = ("--min-time", "0.02", "--device", "cpu")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--backend", "tensorflow"], "unknown backend 'tensorflow'"),
        (["--variant", "Z"], "unknown variant 'Z'"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--batch-sizes", "0"], "not a positive integer"),
        (["--batch-sizes", "-1"], "not a positive integer"),
        (["--batch-sizes", "1,big"], "'big' is not an integer"),
        (["--threads", "0"], "--threads must be a positive integer"),
        (["--compare", "/nonexistent/baseline.json"], "does not exist"),
    ],
)
def test_bad_input_is_one_clear_line(capsys, monkeypatch, tmp_path, args, fragment):
    code, text = fnnkit(capsys, monkeypatch, "bench", *args, "--artifacts", str(tmp_path))
    assert code == 2 and fragment in text and "Traceback" not in text, text


def test_baseline_that_is_not_json_or_another_schema(capsys, monkeypatch, tmp_path):
    (tmp_path / "bad.json").write_text("{ nope")
    code, text = fnnkit(capsys, monkeypatch, "bench", "--compare", str(tmp_path / "bad.json"))
    assert code == 2 and "not valid JSON" in text
    (tmp_path / "old.json").write_text(json.dumps({"schema": "fnnkit.bench/0"}))
    code, text = fnnkit(capsys, monkeypatch, "bench", "--compare", str(tmp_path / "old.json"))
    assert code == 2 and "this fnnkit reads 'fnnkit.bench/2'" in text and len(text.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused(capsys, monkeypatch, root):
    code, text = fnnkit(capsys, monkeypatch, "bench", "--device", "cuda", "--artifacts", str(root))
    assert code == 2 and "no CUDA GPU is usable here" in text and "Traceback" not in text


def test_missing_artifacts_name_the_commands(capsys, monkeypatch, root, tmp_path):
    """Nothing left to run: one error naming every command that makes what is missing (and --prepare)."""
    code, text = fnnkit(capsys, monkeypatch, "bench", "--variant", "A", *QUICK_FLAGS, "--artifacts", str(tmp_path))
    assert code == 2 and "fnnkit train --variant A" in text and "--prepare" in text
    bare = tmp_path / "bare"
    shutil.copytree(root / DATASET / "A", bare / DATASET / "A", ignore=shutil.ignore_patterns("*.onnx", "export.json"))
    code, text = fnnkit(capsys, monkeypatch, "bench", "--variant", "A", "--backend", "onnxruntime,onnxruntime-int8",
                        *QUICK_FLAGS, "--artifacts", str(bare))  # fmt: skip
    assert code == 2 and "fnnkit export --format onnx-int8" in text and "--variant A " in text, text


def test_the_plan_skips_what_cannot_run_with_the_command_that_makes_it(root, tmp_path):
    """One policy for every kind of run: a missing export is a skipped pair naming its command, not a refusal."""
    from fnnkit.bench import plan

    bare = tmp_path / "bare"
    shutil.copytree(root / DATASET / "A", bare / DATASET / "A", ignore=shutil.ignore_patterns("*.onnx", "export.json"))
    targets, skipped = plan(bare, ("A", "B"), DATASET, ("eager", "onnxruntime"), ("cpu",))
    assert [(t.variant, t.backend.name) for t in targets] == [("A", "eager")]
    by_pair = {(s.variant, s.backend): s for s in skipped}
    assert by_pair["A", "onnxruntime"].missing and "fnnkit export --format onnx " in by_pair["A", "onnxruntime"].reason
    assert by_pair["B", "eager"].missing and "fnnkit train --variant B" in by_pair["B", "eager"].reason
    with pytest.raises(BackendUnavailable, match="nothing to run"):
        run_bench(BenchConfig(variants=("A",), backends=("onnxruntime-trt",), artifacts=str(bare), **QUICK))


@pytest.mark.slow  # a real fnnkit bench process: ~3 s
def test_tampered_artifact_stops_the_run(capsys, monkeypatch, root, tmp_path):
    copy = tmp_path / "artifacts"
    shutil.copytree(root / DATASET / "A", copy / DATASET / "A")
    (copy / DATASET / "A" / "model.onnx").write_bytes(b"\x08\x01tampered")
    code, text = fnnkit(capsys, monkeypatch, "bench", "--variant", "A", "--backend", "onnxruntime", *QUICK_FLAGS,
                        "--batch-sizes", "1", "--artifacts", str(copy))  # fmt: skip
    assert code == 2 and "sha256" in text and "Refusing to load" in text and "Traceback" not in text


@pytest.mark.slow  # three runs, each starting a worker process per backend that imports torch: ~20 s on 2 cores
def test_bench_end_to_end_in_worker_processes_with_gate(capsys, monkeypatch, root, tmp_path):
    """The default path: each backend in its own process; files written; the gate passes, then fails."""
    out = tmp_path / "run.json"
    args = ["bench", "--variant", "E", "--backend", "eager,onnxruntime", "--batch-sizes", "1,256", *QUICK_FLAGS,
            "--artifacts", str(root)]  # fmt: skip
    code, text = fnnkit(capsys, monkeypatch, *args, "--json", str(out), "--csv", str(tmp_path / "r.csv"),
                        "--plot", str(tmp_path / "r.png"))  # fmt: skip
    assert code == 0, text
    assert "Recommended backend" in text and (tmp_path / "r.csv").exists() and (tmp_path / "r.png").exists()
    run = load_run(out)
    assert run.isolation == "subprocess" and {r.backend for r in run.rows} == {"eager", "onnxruntime"}
    assert all(r.parity.agrees for r in run.rows)

    lenient = json.loads(out.read_text())
    for r in lenient["rows"]:
        r["latency"]["p50_us"] *= 100  # the baseline was 100x slower: no regression now
    (tmp_path / "slow.json").write_text(json.dumps(lenient))
    code, text = fnnkit(capsys, monkeypatch, *args, "--compare", str(tmp_path / "slow.json"), "--fail-threshold", "50")
    assert code == 0 and "no row slower" in text, text

    strict = json.loads(out.read_text())
    for r in strict["rows"]:
        r["latency"]["p50_us"] /= 100  # 100x faster baseline
    (tmp_path / "fast.json").write_text(json.dumps(strict))
    code, text = fnnkit(capsys, monkeypatch, *args, "--compare", str(tmp_path / "fast.json"), "--fail-threshold", "50")
    assert code == 1 and "regression" in text, text


def test_backends_command_lists_every_pair(capsys, monkeypatch):
    code, text = fnnkit(capsys, monkeypatch, "backends")
    assert code == 0
    for name in BACKENDS:
        assert name in text


def test_row_is_built_once_with_every_sub_record(real_run):
    """Measured sub-records come from the measuring process, ``versus`` from the run: none is a placeholder."""
    for r in real_run.rows:
        assert r.memory.peak_rss_mb > 0 and r.setup.load_s > 0 and set(r.latency.distribution_us) >= {"p1", "p99"}
        assert r.versus is not None and r.trust.busy_cores >= 0
    flat_row = json.loads(real_run.rows[0].model_dump_json())
    assert set(flat_row) == set(type(real_run.rows[0]).model_fields)


# --------------------------------------------------------------------------- records and their published schemas


def test_published_json_schemas_are_the_models():
    """docs/bench-schemas.md is generated from the models: regenerate it with scripts/bench_schemas.py."""
    from fnnkit.bench.schemas import page

    published = (Path(__file__).resolve().parents[1] / "docs" / "bench-schemas.md").read_text()
    assert published == page(), "docs/bench-schemas.md is stale: run `python scripts/bench_schemas.py`"


def test_config_defaults_name_the_registries_entries():
    """The configs name defaults without importing the registries (torch): the names must be the registries'."""
    from fnnkit.bench.config import COLDSTART_BACKENDS, VARIANT_NAMES
    from fnnkit.variants import VARIANTS

    assert tuple(VARIANTS) == VARIANT_NAMES and set(COLDSTART_BACKENDS) <= set(BACKENDS)


@pytest.mark.parametrize(
    "model, field, flag, command",
    [
        ("fnnkit.bench.config:BenchConfig", "min_time_s", "--min-time", ("bench",)),
        ("fnnkit.bench.config:BenchConfig", "threads", "--threads", ("bench",)),
        ("fnnkit.bench.config:ColdStartConfig", "repeats", "--repeats", ("bench", "coldstart")),
        ("fnnkit.bench.scenarios.config:ScenarioConfig", "qps", "--qps", ("bench", "load")),
        ("fnnkit.bench.scenarios.config:ScenarioConfig", "max_batch", "--max-batch", ("bench", "load")),
    ],
)
def test_cli_bounds_are_the_models_bounds(capsys, monkeypatch, tmp_path, model, field, flag, command):
    """At the model's upper bound the flag is accepted (the run fails later, for another reason); just above, the
    one line names the flag: one bound, stated on the model."""
    import importlib

    module, name = model.split(":")
    info = getattr(importlib.import_module(module), name).model_fields[field]
    high = next(m.le for m in info.metadata if type(m).__name__ == "Le")
    above = high + 1 if isinstance(high, int) else high * 1.01
    code, text = fnnkit(capsys, monkeypatch, *command, flag, str(above), "--artifacts", str(tmp_path))
    assert code == 2 and f"{flag} must be" in text, text
    code, text = fnnkit(capsys, monkeypatch, *command, flag, str(high), "--artifacts", str(tmp_path / "none"))
    assert code == 2 and f"{flag} must be" not in text and "Traceback" not in text, text


@pytest.mark.parametrize("package", ["fnnkit.bench", "fnnkit.bench.scenarios"])
def test_lazy_package_names_are_what_they_say(package):
    """A name exported on first use must not be a submodule's name too: once that submodule is imported, the
    package attribute is the module and the export would silently be the wrong object."""
    import importlib
    import pkgutil

    module = importlib.import_module(package)
    submodules = {info.name for info in pkgutil.iter_modules(module.__path__)}
    assert not submodules & set(module.__all__)
    for name in module.__all__:
        assert not inspect.ismodule(getattr(module, name)), name
