"""ONNX Runtime backends: IOBinding predictors and the CUDA / TensorRT plumbing (sessions: ``onnx_runtime``).

numpy and onnxruntime only: nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fnnkit.backends.base import FP16, INT8, Backend, Bound, Predictor
from fnnkit.backends.onnx_runtime import CUDA_OPTIONS, PROVIDERS, ort_session, provider_missing, run_failed
from fnnkit.errors import BackendUnavailable
from fnnkit.formats.onnx import INPUT_NAME, OUTPUT_NAME
from fnnkit.variants import INPUT_DIM, NUM_CLASSES


class OrtPredictor(Predictor):
    """ONNX Runtime through IOBinding: input and output buffers are bound once per prepared batch,
    so a call is one C++ ``Run`` with no Python-side allocation or copy.

    On the CPU a prepared input *is* a bound batch (``_OrtBound``): the call bench times, the load
    scenarios' ``bound(n).run()`` and export parity run the same binding the same way."""

    def __init__(self, backend: str, device: str, threads: int, session: Any, path: Path) -> None:
        super().__init__(backend, device, threads)
        self.session, self.path = session, path

    def prepare(self, x: np.ndarray) -> Bound:
        host = np.array(x, dtype=np.float32, order="C")  # a copy: the caller may change its array afterwards
        return _OrtBound(self, host) if self.device == "cpu" else _OrtDeviceBatch(self, host)

    def __call__(self, prepared: Bound) -> Any:
        return prepared.run()

    def to_host(self, logits: Any) -> np.ndarray:
        if isinstance(logits, np.ndarray):
            return logits.copy()
        return np.array(logits.numpy(), dtype=np.float32)  # an OrtValue on the device: copied to the host

    def bound(self, batch: int) -> Bound:
        if self.device != "cpu":  # a device input is a copy of the host array, not a view of it
            return super().bound(batch)
        return _OrtBound(self, np.zeros((batch, INPUT_DIM), np.float32))


class _OrtBound(Bound):
    """One IOBinding whose input and output OrtValues wrap numpy arrays (ONNX Runtime does not copy CPU
    numpy memory): writing ``host`` changes the input, and ``run`` writes the logits into ``logits``."""

    def __init__(self, predictor: OrtPredictor, host: np.ndarray) -> None:
        import onnxruntime as ort

        self.path = predictor.path
        self.host = host
        self.logits = np.zeros((len(host), NUM_CLASSES), np.float32)
        self._values = (ort.OrtValue.ortvalue_from_numpy(self.host), ort.OrtValue.ortvalue_from_numpy(self.logits))
        self.binding = predictor.session.io_binding()
        self.binding.bind_ortvalue_input(INPUT_NAME, self._values[0])
        self.binding.bind_ortvalue_output(OUTPUT_NAME, self._values[1])
        self._run = predictor.session.run_with_iobinding  # the public API, bound once: one attribute-free frame

    def run(self) -> Any:
        try:
            self._run(self.binding)
        except Exception as exc:  # onnxruntime's own types (Fail, RuntimeException); Ctrl-C is not an Exception
            raise run_failed(self.path, exc) from None
        return self.logits

    def classes(self, logits: Any) -> np.ndarray:
        return logits.argmax(axis=1).astype("<i4")


class _OrtDeviceBatch(Bound):
    """One input copied to the session's device, and its pre-allocated output there."""

    def __init__(self, predictor: OrtPredictor, host: np.ndarray) -> None:
        import onnxruntime as ort

        device = predictor.device
        self.path, self.host = predictor.path, host  # kept alive: ORT may alias it
        self.input = ort.OrtValue.ortvalue_from_numpy(self.host, device, 0)
        self.output = ort.OrtValue.ortvalue_from_shape_and_type([len(self.host), NUM_CLASSES], np.float32, device, 0)
        self.binding = predictor.session.io_binding()
        self.binding.bind_ortvalue_input(INPUT_NAME, self.input)
        self.binding.bind_ortvalue_output(OUTPUT_NAME, self.output)
        self._run = predictor.session.run_with_iobinding

    def run(self) -> Any:
        try:
            self._run(self.binding)
        except Exception as exc:  # onnxruntime's own types; Ctrl-C is not an Exception
            raise run_failed(self.path, exc) from None
        return self.output

    def classes(self, logits: Any) -> np.ndarray:
        return logits.numpy().argmax(axis=1).astype("<i4")


class OnnxRuntime(Backend):
    """ONNX Runtime with the execution provider that matches the device; a fallback is refused."""

    name = "onnxruntime"
    summary = "ONNX Runtime (model.onnx): CPU or CUDA provider"
    export_format = "onnx"
    wait_switch = "onnxruntime"
    providers: ClassVar[dict[str, tuple[str, ...]]] = PROVIDERS
    provider_options: ClassVar[dict[str, dict[str, str]]] = CUDA_OPTIONS

    def _runtime(self, device: str) -> tuple[bool, str]:
        import onnxruntime as ort

        wanted = self.providers[device][0]
        missing = provider_missing(wanted)
        return (False, missing) if missing else (True, f"onnxruntime {ort.__version__} {wanted}")

    def open(self, data: bytes, path: Path, device: str, threads: int) -> Predictor:
        session = ort_session(data, path, self._providers(device), self.provider_options, threads)
        return OrtPredictor(self.name, device, threads, session, path)

    def _providers(self, device: str) -> tuple[str, ...]:
        """What ``open`` asks for: this backend's own list where it offers ``device``, else the plain provider
        (export parity of a portable file on a device this backend is not benchmarked on)."""
        return self.providers.get(device) or PROVIDERS[device]


TRT_MAX_BATCH = 131_072  # the engine's optimisation profile covers batch 1..this; larger batches fail to run


class OnnxRuntimeTrt(OnnxRuntime):
    """TensorRT through ONNX Runtime: one engine for every batch size, cached on disk per model file.

    The engine is built when the session opens (reported as setup, with the first call). Its
    cache folder is named after the ONNX file's sha256, because ONNX Runtime names engines by
    graph structure, not weights: two trainings of one variant would otherwise share an engine.
    """

    name = "onnxruntime-trt"
    summary = "ONNX Runtime TensorRT provider (model.onnx), fp32, engine cached on disk"
    devices = ("cuda",)
    unsupported = "TensorRT is an NVIDIA GPU runtime"
    providers = {"cuda": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")}
    provider_options = {
        "TensorrtExecutionProvider": {
            "trt_fp16_enable": "False",
            "trt_engine_cache_enable": "True",
            "trt_timing_cache_enable": "True",
            # an explicit profile: without one, each batch size beyond the last builds a new engine
            "trt_profile_min_shapes": f"{INPUT_NAME}:1x{INPUT_DIM}",
            "trt_profile_opt_shapes": f"{INPUT_NAME}:1024x{INPUT_DIM}",
            "trt_profile_max_shapes": f"{INPUT_NAME}:{TRT_MAX_BATCH}x{INPUT_DIM}",
        },
        **OnnxRuntime.provider_options,
    }

    def open(self, data: bytes, path: Path, device: str, threads: int) -> Predictor:
        import hashlib

        cache = trt_cache_root() / hashlib.sha256(data).hexdigest()[:16]
        cache.mkdir(parents=True, exist_ok=True)
        trt = self.provider_options["TensorrtExecutionProvider"] | {
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_path": str(cache.parent),  # kernel timings, not weights: shared by every model
        }
        options = self.provider_options | {"TensorrtExecutionProvider": trt}
        try:
            session = ort_session(data, path, self._providers(device), options, threads)
        except BackendUnavailable as exc:  # name the usual cause: TensorRT itself is not installed
            raise BackendUnavailable(f"{exc}; {tensorrt_library()}") from None
        return OrtPredictor(self.name, device, threads, session, path)


def tensorrt_library(name: str = "libnvinfer.so.10") -> str:
    """Whether TensorRT's runtime library (the one onnxruntime-gpu's TensorRT provider links) loads here."""
    import ctypes

    try:
        ctypes.CDLL(name)
    except OSError as exc:
        return f"TensorRT is not installed here ({exc})"
    return f"{name} loads, so onnxruntime's own log above says why the provider did not start"


def trt_cache_root() -> Path:
    """Where TensorRT engines are cached: $FNNKIT_TRT_CACHE, else ~/.cache/fnnkit/tensorrt."""
    import os

    return Path(os.environ.get("FNNKIT_TRT_CACHE") or Path.home() / ".cache" / "fnnkit" / "tensorrt")


class OnnxRuntimeInt8(OnnxRuntime):
    name = "onnxruntime-int8"
    summary = "ONNX Runtime, int8 dynamic quantization (model.int8.onnx)"
    precision = "int8"
    tolerance = INT8
    export_format = "onnx-int8"
    batch_invariant = False  # activation ranges are measured on the whole batch: neighbours change the answer
    devices = ("cpu",)
    unsupported = "dynamically quantized int8 (MatMulInteger) has no CUDA kernels in onnxruntime; it would run on CPU"
    providers = {"cpu": ("CPUExecutionProvider",)}


class OnnxRuntimeInt8Static(OnnxRuntimeInt8):
    name = "onnxruntime-int8-static"
    batch_invariant = True  # calibrated ranges, fixed in the file
    summary = "ONNX Runtime, static QDQ int8, calibrated (model.int8-static.onnx)"
    export_format = "onnx-int8-static"
    unsupported = "static QDQ int8 is offered on CPU (int8 matmul with VNNI/AMX); on CUDA it needs TensorRT"


class OnnxRuntimeFp16(OnnxRuntime):
    name = "onnxruntime-fp16"
    summary = "ONNX Runtime CUDA provider, fp16 weights and math (model.fp16.onnx)"
    precision = "fp16"
    tolerance = FP16
    export_format = "onnx-fp16"
    devices = ("cuda",)
    unsupported = "fp16 ONNX is offered on CUDA only (the CPU provider runs most fp16 ops by casting to fp32)"
    providers = {"cuda": ("CUDAExecutionProvider", "CPUExecutionProvider")}
