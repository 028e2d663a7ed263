"""Parity: run an exported file on the whole test set and compare it with eager PyTorch."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from fnnkit.errors import ParityError
from fnnkit.export.base import Runner, Tolerance
from fnnkit.metrics import logits_of, top1


@dataclass(frozen=True)
class Parity:
    samples: int
    max_abs_diff: float  # max |logits - eager logits| over every test image and class
    agreement: float  # % of test images whose top-1 class equals eager's
    accuracy: float  # % test accuracy of the exported file
    eager_accuracy: float
    accuracy_delta: float  # accuracy - eager_accuracy, percentage points
    criterion: str
    passed: bool
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


@torch.inference_mode()
def reference(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Eager float32 logits on the CPU: the ground truth every format is held to."""
    return logits_of(model.cpu().eval(), inputs)


def measure(run: Runner, inputs: torch.Tensor, labels: torch.Tensor, eager: torch.Tensor, tol: Tolerance) -> Parity:
    started = time.perf_counter()
    logits = logits_of(run, inputs)
    seconds = time.perf_counter() - started
    if logits.shape != eager.shape:
        raise ParityError(f"exported model returned logits of shape {tuple(logits.shape)}, eager {tuple(eager.shape)}")
    finite = bool(torch.isfinite(logits).all())
    max_diff = float((logits - eager).abs().max()) if finite else float("inf")
    predicted = logits.argmax(dim=1)
    agreement = top1(predicted, eager.argmax(dim=1))
    accuracy = top1(predicted, labels)
    eager_accuracy = top1(eager, labels)
    passed = (
        finite
        and agreement >= tol.min_agreement
        and (tol.max_abs_diff is None or max_diff <= tol.max_abs_diff)
        and (tol.max_accuracy_drop is None or eager_accuracy - accuracy <= tol.max_accuracy_drop)
    )
    return Parity(
        samples=len(labels),
        max_abs_diff=max_diff if finite else -1.0,  # JSON has no infinity; -1 marks non-finite output
        agreement=round(agreement, 4),
        accuracy=round(accuracy, 4),
        eager_accuracy=round(eager_accuracy, 4),
        accuracy_delta=round(accuracy - eager_accuracy, 4),
        criterion=tol.describe(),
        passed=passed,
        seconds=round(seconds, 4),
    )


def require(parity: Parity, path: Path, fmt: str) -> None:
    """ParityError naming the file and the figures, when the check failed."""
    if parity.passed:
        return
    diff = "non-finite logits" if parity.max_abs_diff < 0 else f"max |Δ logits| {parity.max_abs_diff:.3g}"
    raise ParityError(
        f"{fmt} export {path} disagrees with eager PyTorch on the {parity.samples} test images: {diff}, "
        f"top-1 agreement {parity.agreement:.2f}%, accuracy {parity.accuracy:.2f}% vs eager "
        f"{parity.eager_accuracy:.2f}%; required: {parity.criterion}. The new file was discarded; "
        f"any previous {path.name} is untouched"
    )
