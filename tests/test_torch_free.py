"""The ONNX Runtime and OpenVINO paths run with torch and onnx made unimportable.

Each child installs a meta-path finder that raises ImportError for ``torch``, ``onnx`` and their
submodules (``onnxruntime`` is another package and stays importable), then runs the real code:
``fnnkit predict`` through the CLI's own ``main``, the cold-start probe
(``fnnkit.bench.coldstart.CHILD``, exactly as each fresh process runs it), and the serving
engines' ``Service``. Any import of torch or onnx on those paths fails the child, so the test
fails: only the vetting needs onnx, and a file ``fnnkit export`` vetted on this machine carries a
stamp that spares its loaders a second vetting (``fnnkit.formats.vetting``). A backend that cannot
run here skips with its reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from artifactkit import DATASET

from fnnkit.backends import get_backend
from fnnkit.bench.coldstart import CHILD, MARK

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
    result = run_without_torch("""
        import fnnkit, fnnkit.export, fnnkit.formats.manifest, fnnkit.backends.base, fnnkit.predict.run
        from fnnkit.backends import BACKENDS, get_backend, resolve_backends
        from fnnkit.export import read_exported, FORMATS
        for name in ("onnxruntime", "onnxruntime-int8", "onnxruntime-int8-static", "openvino", "openvino-int8"):
            get_backend(name)
        resolve_backends("onnxruntime,openvino")
        assert "torch" not in sys.modules
        print("ok", len(FORMATS))
    """)
    assert result.returncode == 0 and result.stdout.startswith("ok"), result.stderr[-3000:]


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
