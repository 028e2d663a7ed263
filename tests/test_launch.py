"""Where a benchmark job runs: the Job/Outcome codec, both launchers, and isolated cold-start children."""

from __future__ import annotations

import shutil

import pytest
from benchrows import row

from fnnkit.bench import BenchConfig, InProcess, Job, Outcome, WorkerProcess, run_bench
from fnnkit.bench.coldstart import run_once
from fnnkit.bench.records import read_record, save_record
from fnnkit.errors import FnnkitError
from fnnkit.store import WEIGHTS_FILE

DATASET = "mnist-sample"
QUICK = dict(min_time_s=0.02, warmup_rounds=1, warmup_s=0.001)


def test_job_and_outcome_share_one_json_codec(tmp_path):
    config = BenchConfig(variants=("A",), backends=("eager",), batch_sizes=(1, 128), threads=1, **QUICK)
    job = Job.of(config, tmp_path / "A", "eager", "cpu")
    assert job.batch_threads == ((1, 1), (128, 1)) and job.min_time_s == 0.02 and job.data_dir is None
    assert read_record(Job, save_record(job, tmp_path / "job.json"), "job", "fnnkit bench") == job
    outcome = Outcome(status="ok", rows=[row(), row(batch_size=64)], message="")
    back = read_record(Outcome, save_record(outcome, tmp_path / "outcome.json"), "outcome", "fnnkit bench")
    assert back == outcome and all(type(r).__name__ == "BenchRow" for r in back.rows)


@pytest.fixture(scope="module")
def broken(trained_root, tmp_path_factory):
    """Variant A whose weights are no longer what its model card recorded."""
    root = tmp_path_factory.mktemp("launch")
    shutil.copytree(trained_root / DATASET / "A", root / DATASET / "A")
    (root / DATASET / "A" / WEIGHTS_FILE).write_bytes(b"not the weights")
    return root


@pytest.mark.parametrize(
    "launcher",
    [InProcess(), pytest.param(WorkerProcess(), marks=pytest.mark.slow)],  # the worker imports torch afresh: ~1.7 s
    ids=lambda launcher: launcher.name,
)
def test_a_failing_job_is_an_error_outcome_with_its_message(broken, launcher):
    """Both launchers return the same Outcome: status and a message naming the file, no exception class."""
    config = BenchConfig(variants=("A",), backends=("eager",), batch_sizes=(1,), **QUICK)
    outcome = launcher.run(Job.of(config, broken / DATASET / "A", "eager", "cpu"))
    assert outcome.status == "error" and outcome.rows == []
    assert str(broken / DATASET / "A" / WEIGHTS_FILE) in outcome.message and "Traceback" not in outcome.message


@pytest.mark.slow  # a whole run_bench with a worker process: ~1.3 s
def test_run_bench_stops_with_one_error_naming_the_job(broken):
    config = BenchConfig(variants=("A",), backends=("eager",), batch_sizes=(1,), threads=1, artifacts=str(broken),
                         dataset=DATASET, **QUICK)  # fmt: skip
    with pytest.raises(FnnkitError, match=r"measuring eager on cpu .* failed: .*sha256") as info:
        run_bench(config, launcher=InProcess())
    assert type(info.value) is FnnkitError


def test_cold_start_children_ignore_code_in_the_working_directory(tmp_path, monkeypatch):
    """``python -c`` would import a json.py from the cwd first; the isolated child runs in a private folder."""
    marker = tmp_path / "ran"
    (tmp_path / "json.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONSTARTUP", str(tmp_path / "json.py"))
    phases = run_once("python", None, "", threads=1, timeout_s=60)
    assert not marker.exists() and phases["total"] > 0 and set(phases) == {"total"}


@pytest.mark.slow  # two worker processes that import torch afresh: ~5 s
@pytest.mark.parametrize("policy", ["spin", "passive"])
def test_a_worker_waits_as_its_job_says_and_its_rows_record_it(trained_root, policy):
    """OMP_WAIT_POLICY reaches the worker's environment, ONNX Runtime's spinning its sessions."""
    config = BenchConfig(
        variants=("A",), backends=("eager",), batch_sizes=(1,), artifacts=str(trained_root), dataset=DATASET,
        accuracy=False, **QUICK,
    )  # fmt: skip
    job = Job.of(config, trained_root / DATASET / "A", "eager", "cpu", wait_policy=policy)
    outcome = WorkerProcess().run(job)
    assert outcome.status == "ok", outcome.message
    assert [r.wait_policy for r in outcome.rows] == [policy]


@pytest.mark.parametrize(
    "backend, policy, omp",
    [("eager", "spin", "ACTIVE"), ("eager", "passive", "PASSIVE"), ("onnxruntime", "spin", "PASSIVE"),
     ("openvino", "spin", "PASSIVE")],
)  # fmt: skip
def test_openmp_spins_only_where_it_runs_the_backend(tmp_path, backend, policy, omp):
    """Torch's pool spinning beside ONNX Runtime's own threads halved ONNX Runtime at batch 8192 on 2 cores."""
    from fnnkit.bench.launch import omp_policy

    job = Job.of(BenchConfig(variants=("A",), backends=(backend,)), tmp_path, backend, "cpu", wait_policy=policy)
    assert omp_policy(job) == omp


def test_a_child_that_hangs_after_saying_ready_is_stopped_at_its_run_allowance(tmp_path):
    """The start allowance (minutes, for a slow compile) ends when the child says it is ready; the rest of its
    life has its own limit, so a hang after a short run costs seconds, and the child is gone afterwards."""
    import subprocess
    import time

    import psutil

    from fnnkit.spawn import StoppedAfterReady, python_argv, run_isolated

    ready = tmp_path / "ready"
    hangs = python_argv(f"import pathlib, time; pathlib.Path({str(ready)!r}).touch(); time.sleep(120)")
    started = time.monotonic()
    with pytest.raises(StoppedAfterReady):
        run_isolated(hangs, timeout=120, ready=ready, after_ready=0.5)
    assert time.monotonic() - started < 15 and not psutil.Process().children(recursive=True)

    slow_start = python_argv("import time; time.sleep(120)")  # never ready: the start allowance stops it
    with pytest.raises(subprocess.TimeoutExpired) as info:
        run_isolated(slow_start, timeout=0.5, ready=tmp_path / "never", after_ready=60)
    assert type(info.value) is subprocess.TimeoutExpired

    ready.unlink()
    answers = python_argv(f"import pathlib; pathlib.Path({str(ready)!r}).touch(); print('x' * 300_000)")
    proc = run_isolated(answers, timeout=60, ready=ready, after_ready=30)  # more output than a pipe holds
    assert proc.returncode == 0 and proc.stdout.strip() == "x" * 300_000
