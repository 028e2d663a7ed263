"""What the GPU check runs on: versions, the GPU, and whether ONNX Runtime's CUDA/TensorRT providers really start.

    python3 scripts/gpu_probe.py --device cuda --json /tmp/fnnkit-gpu/env.json

``onnxruntime.get_available_providers()`` lists the providers a build *contains*, not those
that can start here (the CUDA provider still needs libcudart, cuBLAS and cuDNN of the right
major version; TensorRT needs libnvinfer). So this opens a small Gemm + Sigmoid model with
each provider, through IOBinding on the device as the benchmark does, and reports which
provider the session really runs on, or why it refused. Exit 1 when ``--device cuda`` and
the CUDA provider does not start (the benchmark's ONNX Runtime rows would then be skipped).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def versions() -> dict:
    out = {"python": sys.version.split()[0], "executable": sys.executable}
    for dist in ("torch", "triton", "numpy", "onnx", "onnxscript", "onnxruntime", "onnxruntime-gpu", "fnnkit"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def tiny_model() -> bytes:
    """input [batch, 784] -> Gemm(784x10) -> Sigmoid -> logits [batch, 10], the interface fnnkit's files have."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((784, 10)).astype(np.float32) * 0.05, "w")
    bias = numpy_helper.from_array(np.zeros(10, np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "w", "b"], ["z"]), helper.make_node("Sigmoid", ["z"], ["logits"])],
        "probe",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 784])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def try_provider(ort, data: bytes, providers: list, device: str) -> dict:
    import numpy as np

    x = np.random.default_rng(1).random((64, 784), dtype=np.float32)
    try:
        session = ort.InferenceSession(data, providers=providers)
    except Exception as exc:  # onnxruntime's own exception types
        return {"started": None, "error": f"{type(exc).__name__}: {exc}"[:600]}
    started = session.get_providers()
    result: dict = {"started": started[0], "all": started}
    try:
        reference = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        binding = session.io_binding()
        on = "cuda" if device == "cuda" and started[0] != "CPUExecutionProvider" else "cpu"
        binding.bind_ortvalue_input("input", ort.OrtValue.ortvalue_from_numpy(x, on, 0))
        binding.bind_output("logits", on)
        session.run_with_iobinding(binding)
        got = binding.copy_outputs_to_cpu()[0]
        result["iobinding_on"] = on
        result["max_abs_diff_vs_cpu"] = float(np.abs(got - reference).max())
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"[:600]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", type=Path, help="also write everything found here")
    args = parser.parse_args(argv)

    import torch  # first, as in fnnkit: its CUDA libraries are then already loaded for onnxruntime

    found: dict = {"versions": versions(), "torch_cuda": torch.version.cuda}
    found["cuda_available"] = torch.cuda.is_available()
    found["LD_LIBRARY_PATH"] = os.environ.get("LD_LIBRARY_PATH", "")
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        found["gpu"] = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
            "cudnn": torch.backends.cudnn.version(),
        }
    ort = importlib.import_module("onnxruntime")
    found["onnxruntime"] = {
        "version": ort.__version__,
        "file": ort.__file__,
        "device": ort.get_device(),
        "available_providers": ort.get_available_providers(),
    }
    if hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()
            found["onnxruntime"]["preload_dlls"] = "ok"
        except Exception as exc:
            found["onnxruntime"]["preload_dlls"] = f"{type(exc).__name__}: {exc}"[:300]
    data = tiny_model()
    checks = {
        "CUDAExecutionProvider": [("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"],
        "TensorrtExecutionProvider": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    }
    found["provider_checks"] = {}
    for name, providers in checks.items():
        if name not in ort.get_available_providers():
            found["provider_checks"][name] = {"started": None, "error": "not in this onnxruntime build"}
            continue
        found["provider_checks"][name] = try_provider(ort, data, providers, args.device)

    print(json.dumps(found, indent=1))
    for name, check in found["provider_checks"].items():
        ok = check.get("started") == name and "error" not in check
        print(f"{name}: {'STARTS' if ok else 'does not start'}"
              + ("" if ok else f" (ran on {check.get('started')}; {check.get('error', 'fell back')})"))  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(found, indent=1))
    cuda = found["provider_checks"].get("CUDAExecutionProvider", {})
    return 1 if args.device == "cuda" and cuda.get("started") != "CUDAExecutionProvider" else 0


if __name__ == "__main__":
    sys.exit(main())
