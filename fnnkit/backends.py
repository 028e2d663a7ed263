"""One registry of inference backends: (backend, device) -> Predictor(x[N, 784]) -> logits[N, 10].

A backend is a small class: ``available(device)`` says whether it can run here and why not,
``load(variant_dir, device, threads)`` returns a Predictor. Backend and device are
orthogonal: every backend names the devices it supports, and a device it cannot use is a
reason, never a silent move to another device. The same Predictor serves ``fnnkit bench``,
``fnnkit evaluate`` and the pytest-benchmark suites.

A Predictor separates *preparing* an input (host float32 -> the backend's own format on its
device: a tensor, or an ONNX Runtime IOBinding with pre-allocated output) from *calling* it,
so a benchmark times only the call. ``predict(x)`` does both and returns CPU float32 logits.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch

from fnnkit.errors import ArtifactError, BackendUnavailable, unknown_choice
from fnnkit.export.base import FP16, FP32, INPUT_NAME, INT8, OUTPUT_NAME, Tolerance
from fnnkit.variants import INPUT_DIM, NUM_CLASSES

DEVICES = ("cpu", "cuda")
BF16 = Tolerance(max_abs_diff=None, min_agreement=99.0, max_accuracy_drop=1.0)  # 8-bit mantissa: looser than fp16


def set_threads(threads: int) -> None:
    """Torch's intra-op pool size, process-wide; ONNX Runtime gets the same number per session."""
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise unknown_choice("device", device, DEVICES)
    return device


# --------------------------------------------------------------------------- predictors


class Predictor(ABC):
    """A loaded model on one device: prepare inputs once, then call it as often as needed."""

    def __init__(self, backend: str, device: str, threads: int) -> None:
        self.backend, self.device, self.threads = backend, device, threads

    @abstractmethod
    def prepare(self, x: torch.Tensor) -> Any:
        """Host float32 [N, 784] -> the input this backend consumes, already on its device."""

    @abstractmethod
    def __call__(self, prepared: Any) -> Any:
        """Logits for a prepared input, in the backend's own format and device (not copied back)."""

    @abstractmethod
    def to_host(self, logits: Any) -> torch.Tensor:
        """The backend's logits as a CPU float32 tensor [N, 10] (a copy: outputs may be reused)."""

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """End to end: host float32 [N, 784] -> host float32 logits [N, 10]."""
        return self.to_host(self(self.prepare(x)))

    def synchronize(self) -> None:
        """Wait for queued device work, so a timer stopped after this has seen it all."""
        if self.device == "cuda":
            torch.cuda.synchronize()

    def warmup(self, batch: int, rounds: int = 5) -> None:
        """Run ``rounds`` calls at this batch size: compilers compile, allocators settle, caches fill."""
        prepared = self.prepare(torch.rand(batch, INPUT_DIM))
        for _ in range(rounds):
            self(prepared)
        self.synchronize()

    @contextlib.contextmanager
    def steady(self) -> Iterator[None]:
        """The timed region: a backend that could compile or rebuild here must refuse instead."""
        yield

    @property
    def compilations(self) -> int:
        """Graphs compiled so far by this process for this backend (0 for backends that never compile)."""
        return 0


class TorchPredictor(Predictor):
    """Anything callable on a torch tensor: eager, TorchScript, AOTInductor, reduced precision."""

    def __init__(self, backend: str, device: str, threads: int, fn: Callable, dtype: torch.dtype) -> None:
        super().__init__(backend, device, threads)
        self.fn, self.dtype = fn, dtype

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, self.dtype).contiguous()

    def __call__(self, prepared: torch.Tensor) -> torch.Tensor:
        return self.fn(prepared)

    def to_host(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.detach().to("cpu", torch.float32, copy=True)


class CompiledPredictor(TorchPredictor):
    """torch.compile: compiles lazily per new shape, so the timed region forbids recompiling."""

    @contextlib.contextmanager
    def steady(self) -> Iterator[None]:
        before = self.compilations
        with torch.compiler.set_stance("fail_on_recompile"):  # a guard miss raises instead of compiling
            yield
        if self.compilations != before:
            raise RuntimeError(f"torch.compile compiled {self.compilations - before} graph(s) inside the timed region")

    @property
    def compilations(self) -> int:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])


class OrtPredictor(Predictor):
    """ONNX Runtime through IOBinding: input and output buffers are bound once per prepared batch,
    so a call is one C++ ``Run`` with no Python-side allocation or copy."""

    def __init__(self, backend: str, device: str, threads: int, session: Any) -> None:
        super().__init__(backend, device, threads)
        self.session = session
        self._run = session._sess.run_with_iobinding  # the C++ entry point, minus a Python wrapper frame

    def prepare(self, x: torch.Tensor) -> _OrtBatch:
        return _OrtBatch(self.session, x, self.device)

    def __call__(self, prepared: _OrtBatch) -> Any:
        self._run(prepared.binding._iobinding, None)
        return prepared.output

    def to_host(self, logits: Any) -> torch.Tensor:
        return torch.from_numpy(logits.numpy().copy()).float()


class _OrtBatch:
    """One input bound on the session's device, and its pre-allocated output."""

    def __init__(self, session: Any, x: torch.Tensor, device: str) -> None:
        import numpy as np
        import onnxruntime as ort

        self.host = x.detach().to("cpu", torch.float32).contiguous().numpy()  # kept alive: ORT may alias it
        self.input = ort.OrtValue.ortvalue_from_numpy(self.host, device, 0)
        self.output = ort.OrtValue.ortvalue_from_shape_and_type([len(self.host), NUM_CLASSES], np.float32, device, 0)
        self.binding = session.io_binding()
        self.binding.bind_ortvalue_input(INPUT_NAME, self.input)
        self.binding.bind_ortvalue_output(OUTPUT_NAME, self.output)


# --------------------------------------------------------------------------- backends


class Backend(ABC):
    """What every backend declares, and the checks common to all of them."""

    name: ClassVar[str]
    summary: ClassVar[str]
    devices: ClassVar[tuple[str, ...]] = DEVICES
    unsupported: ClassVar[str] = ""  # why a device outside ``devices`` is not offered
    precision: ClassVar[str] = "fp32"
    tolerance: ClassVar[Tolerance] = FP32  # when its logits count as agreeing with eager
    export_format: ClassVar[str | None] = None  # the exported file it runs; None: the trained weights

    def available(self, device: str) -> tuple[bool, str]:
        """(True, what it runs on) or (False, why not), without loading anything."""
        check_device(device)
        if device not in self.devices:
            return False, self.unsupported or f"{self.name} runs on {', '.join(self.devices)} only"
        if device == "cuda" and not torch.cuda.is_available():
            return False, f"no CUDA GPU here (torch {torch.__version__}: torch.cuda.is_available() is False)"
        return self._runtime(device)

    def _runtime(self, device: str) -> tuple[bool, str]:
        return True, f"torch {torch.__version__} on {device}"

    def load(self, variant_dir: str | Path, device: str, threads: int) -> Predictor:
        """A Predictor for the variant in ``variant_dir``; files are sha256-checked before they are parsed."""
        ok, reason = self.available(device)
        if not ok:
            raise BackendUnavailable(f"backend {self.name} cannot run on {device}: {reason}")
        set_threads(threads)
        return self._load(Path(variant_dir), device, threads)

    @abstractmethod
    def _load(self, folder: Path, device: str, threads: int) -> Predictor: ...

    def missing(self, variant_dir: str | Path, device: str) -> str | None:
        """What this backend needs in ``variant_dir`` that is not there, with the command that makes it."""
        from fnnkit.artifacts import MODEL_CARD

        folder = Path(variant_dir)
        root = folder.parent.parent
        if not (folder / MODEL_CARD).exists():
            return f"no trained model in {folder}: fnnkit train --variant {folder.name} --artifacts {root}"
        if self.export_format is None or is_exported(folder, self.export_format, device):
            return None
        command = export_command(root, folder.parent.name, [folder.name], [self.export_format], device)
        return f"no {self.export_format} export for {device} in {folder}: {command}"


def is_exported(folder: Path, format: str, device: str) -> bool:
    """export.json records ``format`` for ``device`` and the file is there (its sha256 is checked at load)."""
    from fnnkit.artifacts import EXPORT_MANIFEST
    from fnnkit.export import get_format, read_export_manifest

    fmt = get_format(format)
    if not (folder / EXPORT_MANIFEST).exists():
        return False
    entry = read_export_manifest(folder)["formats"].get(fmt.key(device))  # a damaged manifest raises, naming itself
    return isinstance(entry, dict) and (folder / fmt.filename(device)).is_file()


def export_command(root: Path, dataset: str, variants: list[str], formats: list[str], device: str) -> str:
    return (
        f"fnnkit export --format {','.join(formats)} --variant {','.join(variants)} --dataset {dataset} "
        f"--device {device} --artifacts {root}"
    )


def _eager_model(folder: Path, device: str, dtype: torch.dtype) -> torch.nn.Module:
    from fnnkit.artifacts import load_trained

    model, _card = load_trained(folder, device)
    return model.to(dtype=dtype).requires_grad_(False)  # no autograd graph, without a per-call context


class Eager(Backend):
    name, summary = "eager", "PyTorch eager, float32: the reference every other backend is held to"

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        return TorchPredictor(self.name, device, threads, _eager_model(folder, device, torch.float32), torch.float32)


class _ReducedEager(Backend):
    """Eager in a lower precision: worth it on GPU tensor cores, so offered on CUDA only."""

    devices = ("cuda",)
    unsupported = (
        "reduced-precision eager is offered on CUDA only (on CPUs without native half matmul it is slower than fp32)"
    )
    dtype: ClassVar[torch.dtype]

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        return TorchPredictor(self.name, device, threads, _eager_model(folder, device, self.dtype), self.dtype)


class EagerFp16(_ReducedEager):
    name, summary, precision, tolerance, dtype = "eager-fp16", "PyTorch eager in float16", "fp16", FP16, torch.float16


class EagerBf16(_ReducedEager):
    name, summary, precision, tolerance, dtype = "eager-bf16", "PyTorch eager in bfloat16", "bf16", BF16, torch.bfloat16


class Compile(Backend):
    name, summary = "compile", "torch.compile (Inductor, dynamic batch, frozen weights)"

    def _runtime(self, device: str) -> tuple[bool, str]:
        import shutil

        if device == "cpu" and shutil.which("g++") is None and shutil.which("c++") is None:
            return False, "torch.compile on the CPU needs a C++ compiler (g++), and none is on PATH"
        return True, f"torch {torch.__version__} Inductor on {device}"

    cudagraphs: ClassVar[bool] = False

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        model = _eager_model(folder, device, torch.float32)
        # dynamic: one graph for every batch >= 2 (1 is specialised); freezing folds weights into the graph
        options: dict[str, Any] = {"freezing": True}
        if self.cudagraphs:  # exactly what mode="reduce-overhead" sets; torch.compile takes a mode or options, not both
            from torch._inductor import list_mode_options

            options |= list_mode_options("reduce-overhead")
        compiled = torch.compile(model, dynamic=True, options=options)
        step = torch.compiler.cudagraph_mark_step_begin if self.cudagraphs else None

        def run(x: torch.Tensor) -> torch.Tensor:
            if step is not None:  # each call is a new step: its graph may reuse the previous call's output memory
                step()
            with torch.no_grad():  # freezing applies only without grad, and dynamo guards on grad mode
                return compiled(x)

        return CompiledPredictor(self.name, device, threads, run, torch.float32)


class CompileCudaGraphs(Compile):
    """torch.compile with CUDA graphs: a recorded graph per batch size, replayed with one launch per call.

    Outputs live in the graph's memory pool and are overwritten by the next call; ``to_host``
    copies them first (reading a stale one raises rather than returning wrong numbers).
    """

    name, summary = "compile-cudagraphs", 'torch.compile mode="reduce-overhead" (CUDA graphs), frozen weights'
    devices = ("cuda",)
    unsupported = 'CUDA graphs (torch.compile mode="reduce-overhead") exist on CUDA only'
    cudagraphs = True


class TorchScript(Backend):
    name, summary, export_format = "torchscript", "TorchScript (model.torchscript.pt), frozen", "torchscript"

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        import warnings

        from fnnkit.export import load_exported

        module = load_exported(folder, "torchscript", device).handle
        # torch.jit is deprecated upstream; fnnkit.export.torchscript says why fnnkit keeps it
        with warnings.catch_warnings():
            for category in (FutureWarning, DeprecationWarning):  # torch 2.14 / torch 2.11
                warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=category)
            frozen = torch.jit.freeze(module.eval())  # weights become constants: no attribute lookups per call
        return TorchPredictor(self.name, device, threads, frozen, torch.float32)


class Aoti(Backend):
    name, summary, export_format = "aoti", "AOTInductor package (model.pt2), ahead-of-time compiled", "compiled"

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        from fnnkit.export import load_exported

        loader = load_exported(folder, "compiled", device).handle.loader  # skip the pytree wrapper per call

        def run(x: torch.Tensor) -> torch.Tensor:
            return loader.run([x])[0]

        return TorchPredictor(self.name, device, threads, run, torch.float32)


class OnnxRuntime(Backend):
    """ONNX Runtime with the execution provider that matches the device; a fallback is refused."""

    name, summary, export_format = "onnxruntime", "ONNX Runtime (model.onnx): CPU or CUDA provider", "onnx"
    providers: ClassVar[dict[str, tuple[str, ...]]] = {
        "cpu": ("CPUExecutionProvider",),
        "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    }
    provider_options: ClassVar[dict[str, dict[str, str]]] = {"CUDAExecutionProvider": {"use_tf32": "0"}}

    def _runtime(self, device: str) -> tuple[bool, str]:
        import onnxruntime as ort

        wanted = self.providers[device][0]
        if wanted not in ort.get_available_providers():
            found = ", ".join(ort.get_available_providers())
            return False, f"onnxruntime {ort.__version__} here has no {wanted} (it has: {found})"
        return True, f"onnxruntime {ort.__version__} {wanted}"

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        data, path = read_exported(folder, self.export_format, device)
        session = ort_session(data, path, self.providers[device], self.provider_options, threads)
        return OrtPredictor(self.name, device, threads, session)


TRT_MAX_BATCH = 131_072  # the engine's optimisation profile covers batch 1..this; larger batches fail to run


class OnnxRuntimeTrt(OnnxRuntime):
    """TensorRT through ONNX Runtime: one engine for every batch size, cached on disk per model file.

    The engine is built when the session opens (reported as setup, with the first call). Its
    cache folder is named after the ONNX file's sha256, because ONNX Runtime names engines by
    graph structure, not weights: two trainings of one variant would otherwise share an engine.
    """

    name, summary = "onnxruntime-trt", "ONNX Runtime TensorRT provider (model.onnx), fp32, engine cached on disk"
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

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        import hashlib

        data, path = read_exported(folder, self.export_format, device)
        cache = trt_cache_root() / hashlib.sha256(data).hexdigest()[:16]
        cache.mkdir(parents=True, exist_ok=True)
        trt = self.provider_options["TensorrtExecutionProvider"] | {
            "trt_engine_cache_path": str(cache),
            "trt_timing_cache_path": str(cache.parent),  # kernel timings, not weights: shared by every model
        }
        options = self.provider_options | {"TensorrtExecutionProvider": trt}
        try:
            session = ort_session(data, path, self.providers[device], options, threads)
        except BackendUnavailable as exc:  # name the usual cause: TensorRT itself is not installed
            raise BackendUnavailable(f"{exc}; {tensorrt_library()}") from None
        return OrtPredictor(self.name, device, threads, session)


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
    name, summary = "onnxruntime-int8", "ONNX Runtime, int8 dynamic quantization (model.int8.onnx)"
    precision, tolerance, export_format = "int8", INT8, "onnx-int8"
    devices = ("cpu",)
    unsupported = "dynamically quantized int8 (MatMulInteger) has no CUDA kernels in onnxruntime; it would run on CPU"
    providers = {"cpu": ("CPUExecutionProvider",)}


class OnnxRuntimeFp16(OnnxRuntime):
    name, summary = "onnxruntime-fp16", "ONNX Runtime CUDA provider, fp16 weights and math (model.fp16.onnx)"
    precision, tolerance, export_format = "fp16", FP16, "onnx-fp16"
    devices = ("cuda",)
    unsupported = "fp16 ONNX is offered on CUDA only (the CPU provider runs most fp16 ops by casting to fp32)"
    providers = {"cuda": ("CUDAExecutionProvider", "CPUExecutionProvider")}


# --------------------------------------------------------------------------- ONNX Runtime plumbing


def read_exported(folder: Path, format: str, device: str) -> tuple[bytes, Path]:
    """An exported file's bytes, verified against export.json, refusing external-data references.

    Mirrors ``fnnkit.export.load_exported`` up to the point where it opens a session, because a
    benchmark needs its own session options (threads, spinning, providers).
    """
    from fnnkit.artifacts import EXPORT_MANIFEST, read_verified, sweep_stale_temps
    from fnnkit.export import get_format, read_export_manifest

    fmt = get_format(format)
    sweep_stale_temps(folder)
    if not (folder / EXPORT_MANIFEST).exists():
        raise ArtifactError(
            f"nothing exported in {folder} ({EXPORT_MANIFEST} missing); {_export_hint(fmt, folder, device)}"
        )
    entry = read_export_manifest(folder)["formats"].get(fmt.key(device))
    if (
        not isinstance(entry, dict)
        or entry.get("file") != fmt.filename(device)
        or not isinstance(entry.get("sha256"), str)
    ):
        raise ArtifactError(
            f"{folder / EXPORT_MANIFEST} has no usable {fmt.key(device)} entry; {_export_hint(fmt, folder, device)}"
        )
    path = folder / entry["file"]
    if path.is_symlink():
        raise ArtifactError(f"{path} is a symlink; fnnkit loads regular files only")
    data = read_verified(path, entry["sha256"])
    if fmt.vet is not None:  # ONNX: parse, no external data, onnx.checker, as load_exported and fnnkit verify do
        fmt.vet(data, path)
    return data, path


def _export_hint(fmt: Any, folder: Path, device: str) -> str:
    return "create it with: " + export_command(
        folder.parent.parent, folder.parent.name, [folder.name], [fmt.name], device
    )


def ort_session(
    data: bytes,
    path: Path,
    providers: tuple[str, ...],
    provider_options: dict[str, dict[str, str]],
    threads: int,
    optimization: str = "all",
) -> Any:
    """A session with fnnkit's fixed options; BackendUnavailable if the first provider did not start.

    ONNX Runtime silently falls back to the next provider (ultimately the CPU) when one fails
    to load; a benchmark that allowed that would report CPU numbers under a GPU name.
    """
    import onnxruntime as ort

    if providers[0] != "CPUExecutionProvider" and hasattr(ort, "preload_dlls"):
        with contextlib.suppress(Exception):  # loads CUDA/cuDNN from pip wheels; a failure shows as a fallback
            ort.preload_dlls()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # the same pool size torch gets
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = optimization_level(optimization)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads sleep, not steal cores
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    chosen = [(p, provider_options[p]) if p in provider_options else p for p in providers]
    try:
        session = ort.InferenceSession(data, options, providers=chosen)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/EP types
        raise BackendUnavailable(
            f"onnxruntime {ort.__version__} could not open {path} with {providers[0]}: {exc}"
        ) from None
    started = session.get_providers()
    if started[0] != providers[0]:
        raise BackendUnavailable(
            f"onnxruntime could not start {providers[0]} for {path} and fell back to {started[0]}; refusing to "
            "report those numbers under this backend's name (check the CUDA/cuDNN/TensorRT libraries it needs)"
        )
    return session


def optimization_level(name: str) -> Any:
    """ONNX Runtime's graph optimisation level by its short name (``all`` fuses Gemm + activation)."""
    import onnxruntime as ort

    levels = {
        "none": "ORT_DISABLE_ALL",
        "basic": "ORT_ENABLE_BASIC",
        "extended": "ORT_ENABLE_EXTENDED",
        "all": "ORT_ENABLE_ALL",
    }
    if name not in levels:
        raise unknown_choice("graph optimisation level", name, list(levels))
    return getattr(ort.GraphOptimizationLevel, levels[name])


def accuracy(predictor: Predictor, inputs: torch.Tensor, labels: torch.Tensor, chunk: int = 4096) -> float:
    """Top-1 test accuracy in percent of any backend, in chunks that bound device memory."""
    correct = 0
    for start in range(0, len(inputs), chunk):
        logits = predictor.predict(inputs[start : start + chunk])
        correct += int((logits.argmax(dim=1) == labels[start : start + chunk]).sum())
    return 100.0 * correct / len(inputs)


# --------------------------------------------------------------------------- registry


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
        OnnxRuntimeTrt(),
        OnnxRuntimeFp16(),
        EagerFp16(),
        EagerBf16(),
    )
}


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name.strip().lower()]
    except KeyError:
        raise unknown_choice("backend", name, list(BACKENDS)) from None


def resolve_backends(names: str | list[str] | tuple[str, ...]) -> list[Backend]:
    """``"all"``, ``"eager"``, ``"eager,onnxruntime"`` or a list -> backends in registry order, no repeats."""
    if isinstance(names, str):
        names = [names]
    parts = [p.strip().lower() for n in names for p in n.split(",") if p.strip()]
    if not parts:
        raise unknown_choice("backend", "", [*BACKENDS, "all"])
    if "all" in parts:
        return list(BACKENDS.values())
    wanted = {get_backend(p).name for p in parts}
    return [b for b in BACKENDS.values() if b.name in wanted]


def availability(devices: tuple[str, ...] = DEVICES) -> list[tuple[str, str, bool, str]]:
    """(backend, device, ok, reason) for every pair: what ``fnnkit backends`` shows."""
    return [(b.name, d, *b.available(d)) for b in BACKENDS.values() for d in devices]


__all__ = [
    "BACKENDS",
    "accuracy",
    "DEVICES",
    "Backend",
    "Predictor",
    "availability",
    "check_device",
    "get_backend",
    "ort_session",
    "read_exported",
    "resolve_backends",
    "set_threads",
]
