"""Parity: run a backend's Predictor on the whole test set and compare it with reference logits.

The logits come from ``Predictor.logits`` (``bound(n).run()``, the call bench times and serve
deploys), so export parity proves the path that is measured, and bench's accuracy columns come
from the same function. Arrays are numpy: no torch is needed to judge. The reference is eager
PyTorch at export (``reference``); bench workers use the same network's forward pass in numpy
(``fnnkit.numpy_forward``, within 1e-5 of eager's logits), so they import no torch to judge.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fnnkit.backends.base import Predictor, Tolerance
from fnnkit.errors import ParityError


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


def reference(model: Any, inputs: Any) -> np.ndarray:
    """Eager float32 logits on the CPU (numpy): the ground truth ``fnnkit export`` holds every file to."""
    import torch

    from fnnkit.metrics import logits_of

    with torch.inference_mode():
        return logits_of(model.cpu().eval(), torch.as_tensor(np.asarray(inputs, np.float32))).numpy()


def _percent(hits: np.ndarray) -> float:
    return 100.0 * float(hits.mean()) if hits.size else 0.0


def measure(predictor: Predictor, inputs: Any, labels: Any, eager: Any, tol: Tolerance) -> Parity:
    """``predictor`` on every row of ``inputs`` (float32 [N, 784]), judged against the reference logits ``eager``
    (eager PyTorch's, or the numpy forward pass's) by ``tol``."""
    inputs, labels, eager = (np.asarray(a) for a in (inputs, labels, eager))
    started = time.perf_counter()
    logits = predictor.logits(inputs)
    seconds = time.perf_counter() - started
    if logits.shape != eager.shape:
        raise ParityError(f"exported model returned logits of shape {tuple(logits.shape)}, eager {tuple(eager.shape)}")
    finite = bool(np.isfinite(logits).all())
    max_diff = float(np.abs(logits - eager).max()) if finite and logits.size else (0.0 if finite else float("inf"))
    predicted = logits.argmax(axis=1)
    agreement = _percent(predicted == eager.argmax(axis=1))
    accuracy = _percent(predicted == labels)
    eager_accuracy = _percent(eager.argmax(axis=1) == labels)
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
