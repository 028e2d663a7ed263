"""PyTorch's own paths: eager (fp32 and reduced precision), torch.compile, TorchScript, AOTInductor."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch

from fnnkit.backends.base import Backend, Predictor
from fnnkit.capabilities import cpu_capabilities
from fnnkit.export.base import BF16, FP16
from fnnkit.export.core import load_exported
from fnnkit.store import load_trained


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


def _eager_model(folder: Path, device: str, dtype: torch.dtype) -> torch.nn.Module:
    model, _card = load_trained(folder, device)
    return model.to(dtype=dtype).requires_grad_(False)  # no autograd graph, without a per-call context


class Eager(Backend):
    name = "eager"
    summary = "PyTorch eager, float32: the reference every other backend is held to"

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        return TorchPredictor(self.name, device, threads, _eager_model(folder, device, torch.float32), torch.float32)


class _ReducedEager(Backend):
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


class Compile(Backend):
    name = "compile"
    summary = "torch.compile (Inductor, dynamic batch, frozen weights)"

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

    name = "compile-cudagraphs"
    summary = 'torch.compile mode="reduce-overhead" (CUDA graphs), frozen weights'
    devices = ("cuda",)
    unsupported = 'CUDA graphs (torch.compile mode="reduce-overhead") exist on CUDA only'
    cudagraphs = True


class TorchScript(Backend):
    name = "torchscript"
    summary = "TorchScript (model.torchscript.pt), frozen"
    export_format = "torchscript"

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        import warnings

        module = load_exported(folder, "torchscript", device).handle
        # torch.jit is deprecated upstream; fnnkit.export.torchscript says why fnnkit keeps it
        with warnings.catch_warnings():
            for category in (FutureWarning, DeprecationWarning):  # torch 2.14 / torch 2.11
                warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=category)
            frozen = torch.jit.freeze(module.eval())  # weights become constants: no attribute lookups per call
        return TorchPredictor(self.name, device, threads, frozen, torch.float32)


class Aoti(Backend):
    name = "aoti"
    summary = "AOTInductor package (model.pt2), ahead-of-time compiled"
    export_format = "compiled"

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        loader = load_exported(folder, "compiled", device).handle.loader  # skip the pytree wrapper per call

        def run(x: torch.Tensor) -> torch.Tensor:
            return loader.run([x])[0]

        return TorchPredictor(self.name, device, threads, run, torch.float32)
