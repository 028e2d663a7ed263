"""What every export format shares: constants, acceptance rules, what a writer gets, what a loader returns."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

EXAMPLE_BATCH = 8  # tracing batch; >= 2 so torch.export does not specialise the batch axis to 1
DEFAULT_OPSET = 20  # torch 2.14's own default; onnxruntime >= 1.17 runs it (our floor is 1.20)
MIN_OPSET = 17  # below torchlib's native 18 the exporter converts down, which works for these ops
INPUT_NAME, OUTPUT_NAME = "input", "logits"


@dataclass(frozen=True)
class Tolerance:
    """When an export counts as computing what eager PyTorch computes on the whole test set."""

    max_abs_diff: float | None  # bound on max |logits - eager logits|; None: reported, not judged
    min_agreement: float  # percent of test images whose top-1 class equals eager's
    max_accuracy_drop: float | None = None  # percentage points of test accuracy it may lose

    def describe(self) -> str:
        rules = [f"top-1 agreement >= {self.min_agreement:g}%"]
        if self.max_abs_diff is not None:
            rules.insert(0, f"max |Δ logits| <= {self.max_abs_diff:g}")
        if self.max_accuracy_drop is not None:
            rules.append(f"accuracy drop <= {self.max_accuracy_drop:g} points")
        return " and ".join(rules)


FP32 = Tolerance(max_abs_diff=1e-4, min_agreement=100.0)
# Reduced precision trades accuracy for speed, so it is judged by what a user sees: the class.
# Measured on the five variants (mnist-sample, tutorial recipe): int8 agrees on 99.6-99.9% with
# accuracy within +0.2 points (max |Δ| up to 0.4); fp16 agrees on 100% (max |Δ| <= 8e-3).
INT8 = Tolerance(max_abs_diff=None, min_agreement=98.0, max_accuracy_drop=1.0)
FP16 = Tolerance(max_abs_diff=None, min_agreement=99.5, max_accuracy_drop=0.5)
BF16 = Tolerance(max_abs_diff=None, min_agreement=99.0, max_accuracy_drop=1.0)  # 8-bit mantissa: looser than fp16


@dataclass(frozen=True)
class ExportContext:
    """Everything a format's writer needs; built once per variant."""

    model: torch.nn.Module  # eager, float32, eval mode, on the CPU
    metadata: dict[str, str]  # variant, dataset, accuracy, versions, source sha256: travels inside the file
    device: str  # "cpu" | "cuda": what a device-bound format is compiled for; where parity runs
    opset: int
    isa: str = "avx2"  # instruction set a compiled (.pt2) CPU package targets: capabilities.ISA_CHOICES
    calibration: Callable[[], torch.Tensor] | None = None  # training images [N, 784], loaded only if asked
    memo: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)  # graphs exported once per variant


@dataclass
class LoadedExport:
    """An exported file opened with its own runtime; ``handle`` is that runtime's object."""

    format: str
    path: Path
    device: str
    handle: Any  # onnxruntime.InferenceSession | torch.jit.ScriptModule | AOTICompiledModel
    run: Callable[[torch.Tensor], torch.Tensor]  # float32 [N, 784] (any device) -> float32 logits [N, 10] on the CPU

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)


@contextlib.contextmanager
def quiet_logger(name: str = "") -> Iterator[None]:
    """Errors only from one logger (root by default) for a block: for known, unactionable chatter."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@contextlib.contextmanager
def quiet_torch_internals() -> Iterator[None]:
    """Silence deprecation warnings torch raises about its own internals while exporting.

    torch 2.11's exporters deep-copy FX graphs whose pytree specs warn that ``LeafSpec`` is
    deprecated (a FutureWarning from inside torch, printed on every ``fnnkit export``, that no
    caller can act on); later releases no longer do.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
        )
        yield


Runner = Callable[[torch.Tensor], torch.Tensor]  # float32 [N, 784] -> float32 logits [N, 10] on the CPU
Writer = Callable[[ExportContext, Path], None]  # writes the format's file at the given (temporary) path
Vetter = Callable[[bytes, Path, Any], None]  # (bytes, path, VariantSpec | None): ArtifactError if unfit to parse
Opener = Callable[[bytes, Path, str], "tuple[Any, Runner]"]  # (sha256-verified bytes, path, device) -> (handle, run)


def as_float_cpu(logits: Any) -> torch.Tensor:
    """Any runtime's output (numpy array or tensor, any device) as float32 CPU logits."""
    if isinstance(logits, (list, tuple)):
        logits = logits[0]
    tensor = logits if isinstance(logits, torch.Tensor) else torch.from_numpy(logits)
    return tensor.detach().to("cpu", torch.float32)
