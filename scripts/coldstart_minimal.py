"""The floor for `fnnkit bench coldstart`: a minimal process of each runtime, timed the same way.

Usage: python scripts/coldstart_minimal.py [artifacts/mnist/A/model.onnx] [--repeats 5]

Each run is a fresh ``python -I`` process that imports numpy and the runtime, opens the ONNX
file and answers one batch-1 request; the time is from spawning it to reading its line, as
``fnnkit bench coldstart`` measures its ``total``. Prints p50 per runtime.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CHILD = {
    "onnxruntime": (
        "import numpy as np, onnxruntime as ort, sys\n"
        "s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])\n"
        "s.run(None, {s.get_inputs()[0].name: np.zeros((1, 784), np.float32)})\n"
        "print('done', flush=True)\n"
    ),
    "openvino": (
        "import numpy as np, openvino as ov, sys\n"
        "c = ov.Core().compile_model(sys.argv[1], 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})\n"
        "c.create_infer_request().infer([np.zeros((1, 784), np.float32)])\n"
        "print('done', flush=True)\n"
    ),
}


def once(runtime: str, path: str) -> float:
    started = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-I", "-c", CHILD[runtime], path], stdout=subprocess.PIPE, text=True,
        env={"OMP_NUM_THREADS": "1"},
    ) as child:  # fmt: skip
        for line in child.stdout:
            if line.startswith("done"):
                total = time.perf_counter() - started
                child.wait(timeout=60)
                return total
    raise SystemExit(f"{runtime} child failed (exit {child.returncode})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="artifacts/mnist/A/model.onnx")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for runtime in CHILD:
        runs = [once(runtime, args.model) for _ in range(args.repeats)]
        print(f"minimal {runtime}: p50 {statistics.median(runs):.3f} s over {args.repeats} fresh processes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
