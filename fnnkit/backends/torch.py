"""PyTorch's own paths: eager (fp32 and reduced precision), torch.compile, TorchScript (full and lite), AOTInductor.

numpy at the host boundary, as every Predictor: the tensors live inside.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from fnnkit.backends.base import BF16, FP16, Backend, Predictor, quiet_logger, set_threads
from fnnkit.capabilities import cpu_capabilities
from fnnkit.errors import ArtifactError, BackendUnavailable
from fnnkit.formats.pt2 import check_cpu_runs, package_metadata
from fnnkit.store import load_trained
from fnnkit.variants import INPUT_DIM


class TorchPredictor(Predictor):
    """Anything callable on a torch tensor: eager, TorchScript, AOTInductor, reduced precision."""

    def __init__(self, backend: str, device: str, threads: int, fn: Callable, dtype: torch.dtype) -> None:
        super().__init__(backend, device, threads)
        self.fn, self.dtype = fn, dtype

    def prepare(self, x: np.ndarray) -> torch.Tensor:
        tensor = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x, np.float32))
        return tensor.to(self.device, self.dtype).contiguous()

    def __call__(self, prepared: torch.Tensor) -> torch.Tensor:
        return self.fn(prepared)

    def to_host(self, logits: torch.Tensor) -> np.ndarray:
        return logits.detach().to("cpu", torch.float32, copy=True).numpy()


@contextlib.contextmanager
def known_deprecation() -> Iterator[None]:
    """torch.jit and the lite interpreter are deprecated upstream; fnnkit.export.torchscript says why fnnkit
    keeps them. Silenced here, where they are known and documented, rather than shown on every load."""
    with warnings.catch_warnings():
        for category in (FutureWarning, DeprecationWarning):  # torch 2.14 / torch 2.11
            warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=category)
            warnings.filterwarnings("ignore", message=r"Lite Interpreter is deprecated", category=category)
        yield


class _TorchBackend(Backend):
    """A backend that runs in torch: torch's intra-op pool gets the thread count before anything loads."""

    imports_torch = True

    def _runtime(self, device: str) -> tuple[bool, str]:
        return True, f"torch {torch.__version__} on {device}"

    def load(self, variant_dir: str | Path, device: str, threads: int) -> Predictor:
        set_threads(threads)
        return super().load(variant_dir, device, threads)

    def open(self, data: bytes, path: Path, device: str, threads: int) -> Predictor:
        set_threads(threads)
        return self._open(data, path, device, threads)

    def _open(self, data: bytes, path: Path, device: str, threads: int) -> Predictor:
        return super().open(data, path, device, threads)  # weights backends: refused, naming the file


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
        return _graphs_built()


def _graphs_built() -> int:
    """Graphs dynamo has built in this process (every torch.compile'd model's together)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _eager_model(folder: Path, device: str, dtype: torch.dtype) -> torch.nn.Module:
    model, _card = load_trained(folder, device)
    return model.to(dtype=dtype).requires_grad_(False)  # no autograd graph, without a per-call context


class Eager(_TorchBackend):
    name = "eager"
    summary = "PyTorch eager, float32: the reference every other backend is held to"

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        return TorchPredictor(self.name, device, threads, _eager_model(folder, device, torch.float32), torch.float32)


class _ReducedEager(_TorchBackend):
    """Eager in a lower precision: offered on GPUs, and on CPUs whose instruction set has it natively
    (AMX / AVX512-BF16 / AVX512-FP16); elsewhere a CPU emulates it, slower than fp32."""

    dtype: ClassVar[torch.dtype]
    hardware_gated = True

    def _runtime(self, device: str) -> tuple[bool, str]:
        if device == "cpu":
            flag = cpu_capabilities().native(self.precision)
            if flag is None:
                return False, (
                    f"this CPU has no native {self.precision} matmul (none of amx/avx512 {self.precision} in "
                    f"/proc/cpuinfo); emulated, it is slower than fp32"
                )
            return True, f"torch {torch.__version__} on cpu, native {self.precision} ({flag})"
        return super()._runtime(device)

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        return TorchPredictor(self.name, device, threads, _eager_model(folder, device, self.dtype), self.dtype)


class EagerFp16(_ReducedEager):
    name = "eager-fp16"
    summary = "PyTorch eager in float16"
    precision = "fp16"
    tolerance = FP16
    dtype = torch.float16


class EagerBf16(_ReducedEager):
    name = "eager-bf16"
    summary = "PyTorch eager in bfloat16"
    precision = "bf16"
    tolerance = BF16
    dtype = torch.bfloat16


class Compile(_TorchBackend):
    name = "compile"
    summary = "torch.compile (Inductor, dynamic batch, frozen weights)"

    def _runtime(self, device: str) -> tuple[bool, str]:
        import shutil

        if device == "cpu" and shutil.which("g++") is None and shutil.which("c++") is None:
            return False, "torch.compile on the CPU needs a C++ compiler (g++), and none is on PATH"
        return True, f"torch {torch.__version__} Inductor on {device}"

    cudagraphs: ClassVar[bool] = False

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        from torch._inductor import config as inductor_config

        model = _eager_model(folder, device, torch.float32)
        options: dict[str, Any] = {}
        if self.cudagraphs:  # exactly what mode="reduce-overhead" sets; torch.compile takes a mode or options, not both
            from torch._inductor import list_mode_options

            options |= list_mode_options("reduce-overhead")
        compiled = torch.compile(model, dynamic=True, options=options)
        if device == "cpu":  # its first call builds C++; without CUDA, cpp_extension warns "No CUDA runtime is found"
            import logging

            logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        # Freezing (weights folded into the graph as constants; on the CPU, prepacked oneDNN matmuls) is read by
        # dynamo while it traces, so it must be on during the call that compiles: passed as torch.compile's
        # ``options`` it reaches Inductor only, and the graph runs at eager speed (A, batch 1024, 2 threads:
        # 0.93 ms against 0.44 ms frozen). Both graphs are built here, so no later call compiles: batch 1
        # (specialised) and one dynamic graph for every batch >= 2. A shape that still recompiles later runs
        # unfrozen, correct but slower, and a timed region refuses it (``CompiledPredictor.steady``).
        # Dynamo keeps at most ``recompile_limit`` graphs per code object, and every model loaded in this process
        # adds two to the shared FeedForward code; past the limit it silently runs eager. Each load raises the
        # limit by its own two graphs, and a load that built none is refused rather than timed as "compile".
        import torch._dynamo.config as dynamo_config

        dynamo_config.recompile_limit += 2
        step = torch.compiler.cudagraph_mark_step_begin if self.cudagraphs else None
        before = _graphs_built()
        with inductor_config.patch(freezing=True), torch.no_grad():
            for batch in (1, 2):
                if step is not None:
                    step()
                compiled(torch.zeros(batch, INPUT_DIM, device=device))
        if _graphs_built() == before:
            raise BackendUnavailable(f"torch.compile built no graph for {folder} (it would run eager, unlabelled)")

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

    name = "compile-cudagraphs"
    summary = 'torch.compile mode="reduce-overhead" (CUDA graphs), frozen weights'
    devices = ("cuda",)
    unsupported = 'CUDA graphs (torch.compile mode="reduce-overhead") exist on CUDA only'
    cudagraphs = True


class TorchScript(_TorchBackend):
    name = "torchscript"
    summary = "TorchScript (model.torchscript.pt), frozen"
    export_format = "torchscript"

    def _open(self, data: bytes, path: Path, device: str, threads: int) -> Predictor:
        try:
            with known_deprecation():
                module = torch.jit.load(io.BytesIO(data), map_location=device, _extra_files={"fnnkit.json": ""})
                frozen = torch.jit.freeze(module.eval())  # weights become constants: no attribute lookups per call
        except RuntimeError as exc:
            raise ArtifactError(f"{path} is not a loadable TorchScript file ({exc}); re-export it") from None
        return TorchPredictor(self.name, device, threads, _guarded(frozen, path), torch.float32)


class TorchScriptLite(_TorchBackend):
    """The ``.ptl`` file in PyTorch Mobile's lite interpreter, on the CPU: what proves that format."""

    name = "torchscript-lite"
    summary = "TorchScript lite interpreter (model.ptl, PyTorch Mobile), CPU"
    export_format = "torchscript-lite"
    devices = ("cpu",)
    unsupported = "the lite interpreter runs on the CPU only"
    in_all = False  # a mobile format: `--format all` does not make it, so `--backend all` does not ask for it

    def _open(self, data: bytes, path: Path, device: str, threads: int) -> Predictor:
        from torch.jit.mobile import _load_for_lite_interpreter

        if device != "cpu":
            raise BackendUnavailable(f"{path}: the lite interpreter runs on the CPU only; export it with --device cpu")
        try:
            with known_deprecation():
                module = _load_for_lite_interpreter(io.BytesIO(data))
        except RuntimeError as exc:
            raise ArtifactError(f"{path} is not a loadable lite-interpreter file ({exc}); re-export it") from None

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return module(x)

        return TorchPredictor(self.name, device, threads, _guarded(run, path), torch.float32)


class Aoti(_TorchBackend):
    name = "aoti"
    summary = "AOTInductor package (model.pt2), ahead-of-time compiled"
    export_format = "compiled"

    def _open(self, data: bytes, path: Path, device: str, threads: int) -> Predictor:
        import torch._inductor

        if device == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailable(f"{path} is compiled for cuda, but torch.cuda.is_available() is False here")
        check_cpu_runs(package_metadata(data, path), path)
        # torch warns when the package's ISA differs from this CPU's best; check_cpu_runs has decided that already
        try:
            with quiet_logger("torch.export.pt2_archive._package"):
                compiled = torch._inductor.aoti_load_package(io.BytesIO(data))
        except Exception as exc:  # the C++ loader raises RuntimeError; a damaged zip raises others
            raise ArtifactError(f"{path} is not a loadable AOTInductor package ({exc}); re-export it") from None
        built_for = compiled.get_metadata().get("AOTI_DEVICE_KEY", "?")
        if built_for != device:
            raise ArtifactError(f"{path} was compiled for {built_for}, not {device}; export it with --device {device}")
        loader = compiled.loader  # skip the pytree wrapper per call

        def run(x: torch.Tensor) -> torch.Tensor:
            return loader.run([x])[0]

        return TorchPredictor(self.name, device, threads, _guarded(run, path), torch.float32)


def _guarded(fn: Callable[[torch.Tensor], torch.Tensor], path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """A native runtime's error while running (TorchScript's interpreter, AOTInductor's) as one line naming the file."""

    def run(x: torch.Tensor) -> torch.Tensor:
        try:
            return fn(x)
        except RuntimeError as exc:  # Ctrl-C is not a RuntimeError
            raise ArtifactError(f"{path} failed while running: {str(exc)[:300]}; re-export it") from None

    return run
