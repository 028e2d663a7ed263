"""The ONNX Runtime and OpenVINO paths run with torch and onnx made unimportable.

Each child installs a meta-path finder that raises ImportError for ``torch``, ``onnx`` and their
submodules (``onnxruntime`` is another package and stays importable), then runs the real code:
``fnnkit predict`` through the CLI's own ``main``, the cold-start probe
(``fnnkit.bench.coldstart.CHILD``, exactly as each fresh process runs it), the serving
engines' ``Service``, and the bench worker (``fnnkit.bench.worker.main``, the code a
``WorkerProcess`` child runs) for every backend whose ``imports_torch`` is False. Any import of
torch or onnx on those paths fails the child, so the test fails: only the vetting needs onnx, and a
file ``fnnkit export`` vetted on this machine carries a stamp that spares its loaders a second
vetting (``fnnkit.formats.vetting``). A backend that cannot run here skips with its reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import psutil
import pytest
from artifactkit import DATASET

from fnnkit.backends import BACKEND_NAMES, get_backend
from fnnkit.bench import BenchConfig, Job, Outcome
from fnnkit.bench.coldstart import CHILD, MARK
from fnnkit.bench.records import read_record, save_record
from fnnkit.store import read_model_card

# every backend that declares it runs without torch, and runs on the CPU: the class, not two examples
TORCH_FREE = [n for n in BACKEND_NAMES if not get_backend(n).imports_torch]
TORCH_FREE_CPU = [n for n in TORCH_FREE if "cpu" in get_backend(n).devices]

NO_TORCH = """
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "onnx"):
            raise ImportError(f"{name.partition('.')[0]} is unimportable in this test (asked for {name})")
        return None

sys.meta_path.insert(0, _NoTorch())
"""


def run_without_torch(code: str, *args: str) -> subprocess.CompletedProcess:
    script = NO_TORCH + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


@pytest.mark.parametrize("module", ["torch", "torch.nn", "onnx", "onnx.checker"])
def test_the_blocker_really_blocks_torch_and_onnx(module):
    result = run_without_torch(f"import {module}")
    assert result.returncode != 0 and f"{module.partition('.')[0]} is unimportable" in result.stderr


def test_the_blocker_leaves_onnxruntime_importable():
    result = run_without_torch("import onnxruntime; print('ok')")
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr[-2000:]


def test_readers_and_the_registry_import_no_torch():
    assert {"onnxruntime", "openvino"} <= set(TORCH_FREE_CPU)
    result = run_without_torch(
        """
        import fnnkit, fnnkit.export, fnnkit.formats.manifest, fnnkit.backends.base, fnnkit.predict.run
        import fnnkit.bench.worker, fnnkit.numpy_forward
        from fnnkit.backends import BACKENDS, get_backend, resolve_backends
        from fnnkit.data import load_test_arrays
        from fnnkit.export import read_exported, FORMATS
        for name in sys.argv[1].split(","):
            assert not get_backend(name).imports_torch
        resolve_backends("onnxruntime,openvino")
        inputs, labels = load_test_arrays("mnist-sample")
        assert inputs.dtype.name == "float32" and inputs.shape == (len(labels), 784) and labels.dtype.name == "int64"
        assert "torch" not in sys.modules
        print("ok", len(FORMATS))
        """,
        ",".join(TORCH_FREE),
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout.startswith("ok"), result.stderr[-3000:]


# a fresh process per backend that imports its runtime and measures two rows, ~0.4 s each: the first in the fast tier
@pytest.mark.parametrize(
    "backend", [pytest.param(n, marks=() if i == 0 else pytest.mark.slow) for i, n in enumerate(TORCH_FREE_CPU)]
)
def test_a_bench_worker_measures_an_onnx_file_without_torch(backend, exported_root, tmp_path):
    """The worker's own code, on a Job record as ``WorkerProcess`` writes it: rows, parity, no torch, no onnx."""
    ok, why = get_backend(backend).available("cpu")
    if not ok:
        pytest.skip(why)
    folder = exported_root / DATASET / "A"  # sigmoid: the numpy reference's one activation with an exp
    config = BenchConfig(
        variants=("A",), backends=(backend,), batch_sizes=(1, 64), artifacts=str(exported_root), dataset=DATASET,
        min_time_s=0.02, max_time_s=0.05, warmup_rounds=1, warmup_s=0.001,
    )  # fmt: skip
    job_path, out_path = tmp_path / "job.json", tmp_path / "outcome.json"
    save_record(Job.of(config, folder, backend, "cpu"), job_path)
    parent_mb = psutil.Process().memory_info().rss / 2**20  # this process: torch, the session's fixtures
    result = run_without_torch(
        """
        from fnnkit.bench.worker import main  # what fnnkit.spawn.python_module_argv runs in the worker
        try:
            main(sys.argv[1:3])
        finally:
            print("TORCH", "torch" in sys.modules, "ONNX", "onnx" in sys.modules)
        """,
        str(job_path), str(out_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "TORCH False ONNX False"
    outcome = read_record(Outcome, out_path, "benchmark outcome", "rerun the test")
    assert outcome.status == "ok", outcome.message
    assert [(r.backend, r.batch_size) for r in outcome.rows] == [(backend, 1), (backend, 64)]
    parity = outcome.rows[0].parity
    assert parity is not None and parity.agrees, parity
    assert 0 <= parity.max_abs_diff <= (get_backend(backend).tolerance.max_abs_diff or 1.0)
    assert parity.accuracy > 80
    # the worker's own peak memory (Linux carries ru_maxrss across exec: it read as the parent's size)
    assert all(0 < r.memory.peak_rss_mb < parent_mb for r in outcome.rows), (parent_mb, outcome.rows[0].memory)
    # the reference's accuracy is the one training measured in torch on the same test images
    assert abs(parity.eager_accuracy - read_model_card(folder)["test_accuracy"]) <= 0.01


@pytest.mark.slow  # three fresh processes that import onnxruntime and openvino, ~3 s
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_predict_coldstart_and_serve_run_without_torch(backend, exported_root, tmp_path):
    ok, why = get_backend(backend).available("cpu")
    if not ok:
        pytest.skip(why)
    folder = exported_root / DATASET / "C"
    digits = tmp_path / "digits.npy"
    np.save(digits, np.random.default_rng(0).random((3, 28, 28), np.float32))
    result = run_without_torch(
        """
        import json
        from fnnkit.serve.app_config import ServeConfig
        from fnnkit.serve.service import Service
        import numpy as np

        root, folder, backend, digits, probe, mark = sys.argv[1:7]
        sys.argv = ["-c", "backend", folder, backend, "1", mark]  # the probe, as each fresh process runs it
        exec(probe, {"__name__": "__main__"})
        service = Service(ServeConfig(folder=folder, backend=backend))  # both serving engines build this
        probs = service.probabilities(np.random.default_rng(1).random((5, 784), np.float32))
        assert probs.shape == (5, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-5), probs
        assert "torch" not in sys.modules and "onnx" not in sys.modules
        sys.argv = ["fnnkit", "predict", digits, "--variant", "C", "--dataset", "mnist-sample",
                    "--backend", backend, "--json", "--artifacts", root]
        from fnnkit.cli import main
        try:
            main()
        finally:
            print("TORCH", "torch" in sys.modules, "ONNX", "onnx" in sys.modules)
        """,
        str(exported_root), str(folder), backend, str(digits), CHILD, MARK,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    probe = json.loads(next(line for line in lines if line.startswith("FNNKIT_COLDSTART ")).split(" ", 1)[1])
    assert set(probe) == {"import", "load", "first"} and all(v > 0 for v in probe.values())
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(rows) == 3 and all(abs(sum(t["probability"] for t in r["top"]) - 1) < 0.5 for r in rows)
    assert lines[-1] == "TORCH False ONNX False"


def test_a_loadgen_run_of_an_onnx_file_runs_without_torch(exported_root, tmp_path):
    """The code each fresh LoadGen process runs (``fnnkit.bench.scenarios.runs.main``), performance and accuracy."""
    pytest.importorskip("mlperf_loadgen", reason="MLPerf LoadGen is not installed: pip install mlcommons-loadgen")
    from fnnkit.bench.scenarios import ScenarioConfig
    from fnnkit.bench.scenarios.runs import RunJob, RunOutcome
    from fnnkit.data import load_test_arrays

    inputs, labels = load_test_arrays(DATASET)
    np.save(tmp_path / "inputs.npy", inputs)
    np.save(tmp_path / "labels.npy", labels)
    # 600 queries: enough for early stopping; a 50 ms bound: what is tested is the torch-free path, and a 2 ms p99
    # at 5000 q/s is a fact about how busy the machine is (it failed so while the rest of the suite ran).
    config = ScenarioConfig(
        qps=5000, min_duration_ms=200, min_query_count=600, time_cap_s=10, latency_bound_ms=50
    )  # fmt: skip
    folder = exported_root / DATASET / "C"
    for accuracy in (False, True):
        job = RunJob(
            backend="onnxruntime", folder=str(folder), device="cpu", config=config, qps=5000.0,
            log_dir=str(tmp_path / f"logs-{accuracy}"), inputs=str(tmp_path / "inputs.npy"),
            labels=str(tmp_path / "labels.npy") if accuracy else None, accuracy=accuracy,
        )  # fmt: skip
        save_record(job, tmp_path / "job.json")
        result = run_without_torch(
            """
            from fnnkit.bench.scenarios.runs import main  # what each fresh process runs
            try:
                main(sys.argv[1:3])
            finally:
                print("TORCH", "torch" in sys.modules, "ONNX", "onnx" in sys.modules)
            """,
            str(tmp_path / "job.json"), str(tmp_path / "out.json"),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.splitlines()[-1] == "TORCH False ONNX False"
        outcome = read_record(RunOutcome, tmp_path / "out.json", "LoadGen run outcome", "rerun the test")
        assert outcome.error == "" and outcome.result is not None and outcome.result.valid, outcome
        assert (tmp_path / f"logs-{accuracy}" / "mlperf_log_detail.txt").is_file()
        if accuracy:  # the same images and labels the model card's accuracy was measured on
            assert abs(outcome.result.accuracy - read_model_card(folder)["test_accuracy"]) <= 0.01
