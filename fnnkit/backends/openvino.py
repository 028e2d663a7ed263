"""OpenVINO: Intel's CPU runtime, reading the verified ONNX bytes fnnkit exported.

Precision is always stated, never left to OpenVINO's default: on a CPU with native bf16 its
default ``INFERENCE_PRECISION_HINT`` is bf16, so an unlabelled run would report bf16 numbers
as fp32. ``openvino`` forces f32; ``openvino-bf16`` asks for bf16 and is offered only where
the CPU has it natively; ``openvino-int8`` runs the static QDQ file, which OpenVINO executes
with int8 kernels.

Performance hint: OpenVINO's documentation recommends LATENCY when one request is in flight
at a time and THROUGHPUT only with several parallel requests (THROUGHPUT splits the threads
into streams, and one request then uses only one stream's share). fnnkit's benchmark keeps one
synchronous request in flight at every batch size, so it uses LATENCY everywhere; measured
here (A, batch 8192, 2 threads): LATENCY 0.51M samples/s, THROUGHPUT 0.32M/s.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fnnkit.backends.base import BF16, INT8, Backend, Bound, Predictor, Tolerance
from fnnkit.capabilities import cpu_capabilities
from fnnkit.errors import BackendUnavailable
from fnnkit.variants import INPUT_DIM

OV_DEVICE = "CPU"
HINT = "LATENCY"  # one request in flight at a time (see the module docstring)


class OpenVinoPredictor(Predictor):
    """One infer request per prepared batch, its input tensor sharing the host array's memory: a prepared
    input is a bound batch (``_OvBound``), so bench, the load scenarios and export parity run one path."""

    def __init__(self, backend: str, threads: int, compiled: Any) -> None:
        super().__init__(backend, "cpu", threads)
        self.compiled = compiled

    def prepare(self, x: np.ndarray) -> Bound:
        return _OvBound(self, np.array(x, dtype=np.float32, order="C"))  # a copy: the request aliases it

    def __call__(self, prepared: Bound) -> Any:
        return prepared.run()

    def to_host(self, logits: Any) -> np.ndarray:
        return np.array(logits.data, dtype=np.float32)

    def bound(self, batch: int) -> Bound:
        return _OvBound(self, np.zeros((batch, INPUT_DIM), np.float32))


class _OvBound(Bound):
    """One infer request whose input tensor shares ``host``'s memory; its output is read in place."""

    def __init__(self, predictor: OpenVinoPredictor, host: np.ndarray) -> None:
        import openvino as ov

        self.host = host
        self.request = predictor.compiled.create_infer_request()
        self.request.set_input_tensor(ov.Tensor(self.host, shared_memory=True))

    def run(self) -> Any:
        # Synchronous infer runs in this thread: start_async() + wait() hands every call to OpenVINO's
        # worker thread and back, which measured 97 us against 16 us at batch 1 (variant A, 1 thread).
        self.request.infer(share_outputs=True)  # share_outputs: no copy of the logits into a Python dict
        return self.request.get_output_tensor(0)

    def classes(self, logits: Any) -> np.ndarray:
        return logits.data.argmax(axis=1).astype("<i4")


class OpenVino(Backend):
    name = "openvino"
    summary = "OpenVINO CPU plugin (model.onnx), forced to f32"
    export_format = "onnx"
    devices = ("cpu",)
    unsupported = "OpenVINO's GPU plugin drives Intel GPUs, not CUDA"
    wait_switch = ""  # its CPU plugin's threads wait as the runtime decides: no switch to record
    hint_precision: ClassVar[str] = "f32"  # OpenVINO's INFERENCE_PRECISION_HINT
    needs: ClassVar[str] = "FP32"  # the plugin's OPTIMIZATION_CAPABILITIES entry this backend relies on

    def _runtime(self, device: str) -> tuple[bool, str]:
        try:
            import openvino as ov
        except ImportError:
            return False, "openvino is not installed (pip install openvino, or make setup)"
        core = ov.Core()
        if OV_DEVICE not in core.available_devices:
            return False, f"openvino {ov.__version__} lists no CPU device here ({core.available_devices})"
        offered = core.get_property(OV_DEVICE, "OPTIMIZATION_CAPABILITIES")
        if self.needs not in offered:
            return False, f"openvino {ov.__version__}'s CPU plugin has no native {self.needs} here ({offered})"
        return self._capability(ov.__version__.split("-")[0])  # "2026.4.1-22982-<hash>-releases/...": the release

    def _capability(self, version: str) -> tuple[bool, str]:
        return True, f"openvino {version} CPU, {self.precision}"

    def open(self, data: bytes, path: Path, device: str, threads: int) -> Predictor:
        import openvino as ov

        if device != "cpu":
            raise BackendUnavailable(f"backend {self.name} cannot open {path} on {device}: {self.unsupported}")
        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": self.hint_precision, "PERFORMANCE_HINT": HINT,
                  "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1}  # fmt: skip
        try:
            compiled = core.compile_model(core.read_model(io.BytesIO(data)), OV_DEVICE, config)
        except Exception as exc:  # openvino raises its own RuntimeError subclasses
            raise BackendUnavailable(f"openvino {ov.__version__} could not compile {path}: {exc}") from None
        got = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # what it really compiled for
        if got != self.hint_precision:
            raise BackendUnavailable(
                f"openvino compiled {path} in {got}, not {self.hint_precision}; refusing to label it"
            )
        return OpenVinoPredictor(self.name, threads, compiled)


class OpenVinoBf16(OpenVino):
    name = "openvino-bf16"
    summary = "OpenVINO CPU plugin (model.onnx) in bf16, where the CPU has it natively"
    precision = "bf16"
    tolerance = BF16
    hint_precision = "bf16"
    needs = "BF16"
    hardware_gated = True

    def _capability(self, version: str) -> tuple[bool, str]:
        flag = cpu_capabilities().bf16
        if flag is None:
            return False, "this CPU has no native bf16 (amx_bf16 / avx512_bf16 in /proc/cpuinfo)"
        return True, f"openvino {version} CPU, bf16 ({flag})"


class OpenVinoInt8(OpenVino):
    name = "openvino-int8"
    summary = "OpenVINO CPU plugin running the static QDQ int8 file (model.int8-static.onnx)"
    precision = "int8"
    export_format = "onnx-int8-static"
    needs = "INT8"
    tolerance: ClassVar[Tolerance] = INT8
    hint_precision = "f32"  # precision of the non-quantised parts; the QDQ pairs run as int8 kernels
