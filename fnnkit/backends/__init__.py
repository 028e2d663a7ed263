"""One registry of inference backends: (backend, device) -> Predictor(x[N, 784]) -> logits[N, 10].

Rooms: ``base`` (the Predictor contract, the Backend base class, the tolerance table, devices),
``torch`` (PyTorch's own paths), ``ort`` + ``onnx_runtime`` (ONNX Runtime: the one session builder,
CUDA / TensorRT), ``openvino`` (Intel's CPU runtime on the same ONNX files).
The registry is names -> module: a backend's module is imported only when that backend is asked
for, so ``get_backend("onnxruntime")`` never imports torch. The same Predictor serves export
parity, ``fnnkit bench``, the load scenarios, ``fnnkit evaluate``, ``predict`` and ``serve``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from fnnkit.backends.base import (
    BF16,
    DEVICES,
    FP16,
    FP32,
    INT8,
    Backend,
    Bound,
    Predictor,
    Tolerance,
    check_device,
    set_threads,
)
from fnnkit.registry import lookup, pick

# name -> (module, class), in the order every table lists them
_WHERE: dict[str, tuple[str, str]] = {
    "eager": ("torch", "Eager"),
    "compile": ("torch", "Compile"),
    "compile-cudagraphs": ("torch", "CompileCudaGraphs"),
    "torchscript": ("torch", "TorchScript"),
    "torchscript-lite": ("torch", "TorchScriptLite"),
    "aoti": ("torch", "Aoti"),
    "onnxruntime": ("ort", "OnnxRuntime"),
    "onnxruntime-int8": ("ort", "OnnxRuntimeInt8"),
    "onnxruntime-int8-static": ("ort", "OnnxRuntimeInt8Static"),
    "onnxruntime-trt": ("ort", "OnnxRuntimeTrt"),
    "onnxruntime-fp16": ("ort", "OnnxRuntimeFp16"),
    "openvino": ("openvino", "OpenVino"),
    "openvino-bf16": ("openvino", "OpenVinoBf16"),
    "openvino-int8": ("openvino", "OpenVinoInt8"),
    "eager-fp16": ("torch", "EagerFp16"),
    "eager-bf16": ("torch", "EagerBf16"),
}
BACKEND_NAMES: tuple[str, ...] = tuple(_WHERE)
_made: dict[str, Backend] = {}


def _make(name: str) -> Backend:
    if name not in _made:
        module, cls = _WHERE[name]
        _made[name] = getattr(importlib.import_module(f"fnnkit.backends.{module}"), cls)()
    return _made[name]


class _Registry(Mapping[str, Backend]):
    """``BACKENDS``: reads like a dict of every backend, but imports a backend's module on first access."""

    def __getitem__(self, name: str) -> Backend:
        if name not in _WHERE:
            raise KeyError(name)
        return _make(name)

    def __iter__(self) -> Iterator[str]:
        return iter(_WHERE)

    def __len__(self) -> int:
        return len(_WHERE)

    def __contains__(self, name: object) -> bool:
        return name in _WHERE


BACKENDS: Mapping[str, Backend] = _Registry()


def get_backend(name: str) -> Backend:
    return lookup(BACKENDS, name, "backend")


def resolve_backends(names: str | list[str] | tuple[str, ...]) -> list[Backend]:
    """``"all"``, ``"eager"``, ``"eager,onnxruntime"`` or a list -> backends in registry order, no repeats.

    Only the backends named are imported; ``all`` is every backend whose ``in_all`` is set.
    """
    chosen = pick({n: n for n in _WHERE}, names, "backend", everything=lambda: [n for n in _WHERE if _make(n).in_all])
    return [_make(name) for name in chosen]


def __getattr__(name: str) -> Any:
    """ONNX Runtime's helpers, from their module on first use (importing it imports no onnxruntime)."""
    if name in ("TRT_MAX_BATCH", "trt_cache_root"):
        return getattr(importlib.import_module("fnnkit.backends.ort"), name)
    if name in ("ort_session", "set_spinning", "spinning"):
        return getattr(importlib.import_module("fnnkit.backends.onnx_runtime"), name)
    if name == "read_exported":
        from fnnkit.formats.manifest import read_exported

        return read_exported
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BACKENDS",
    "BACKEND_NAMES",
    "BF16",
    "DEVICES",
    "FP16",
    "FP32",
    "INT8",
    "Backend",
    "Bound",
    "Predictor",
    "Tolerance",
    "check_device",
    "get_backend",
    "resolve_backends",
    "set_threads",
]
