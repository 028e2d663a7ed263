"""One registry of inference backends: (backend, device) -> Predictor(x[N, 784]) -> logits[N, 10].

Rooms: ``base`` (the Predictor protocol, the Backend base class, devices), ``torch``
(PyTorch's own paths), ``ort`` (ONNX Runtime: the one session builder, CUDA / TensorRT),
``openvino`` (Intel's CPU runtime on the same ONNX files).
The same Predictor serves ``fnnkit bench``, ``fnnkit evaluate`` and the pytest-benchmark suites.
"""

from __future__ import annotations

from fnnkit.backends.base import (
    DEVICES,
    Backend,
    Predictor,
    check_device,
    set_threads,
)
from fnnkit.backends.openvino import OpenVino, OpenVinoBf16, OpenVinoInt8
from fnnkit.backends.ort import (
    TRT_MAX_BATCH,
    OnnxRuntime,
    OnnxRuntimeFp16,
    OnnxRuntimeInt8,
    OnnxRuntimeInt8Static,
    OnnxRuntimeTrt,
    trt_cache_root,
)
from fnnkit.backends.torch import Aoti, Compile, CompileCudaGraphs, Eager, EagerBf16, EagerFp16, TorchScript
from fnnkit.export.core import read_exported
from fnnkit.export.onnx_runtime import ort_session
from fnnkit.registry import lookup, pick

BACKENDS: dict[str, Backend] = {
    backend.name: backend
    for backend in (
        Eager(),
        Compile(),
        CompileCudaGraphs(),
        TorchScript(),
        Aoti(),
        OnnxRuntime(),
        OnnxRuntimeInt8(),
        OnnxRuntimeInt8Static(),
        OnnxRuntimeTrt(),
        OnnxRuntimeFp16(),
        OpenVino(),
        OpenVinoBf16(),
        OpenVinoInt8(),
        EagerFp16(),
        EagerBf16(),
    )
}


def get_backend(name: str) -> Backend:
    return lookup(BACKENDS, name, "backend")


def resolve_backends(names: str | list[str] | tuple[str, ...]) -> list[Backend]:
    """``"all"``, ``"eager"``, ``"eager,onnxruntime"`` or a list -> backends in registry order, no repeats."""
    return pick(BACKENDS, names, "backend")


__all__ = [
    "BACKENDS",
    "DEVICES",
    "TRT_MAX_BATCH",
    "Backend",
    "Predictor",
    "check_device",
    "get_backend",
    "ort_session",
    "read_exported",
    "resolve_backends",
    "set_threads",
    "trt_cache_root",
]
