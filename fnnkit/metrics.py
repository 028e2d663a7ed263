"""Accuracy, computed one way for training, export parity and benchmarks.

(LoadGen's accuracy runs score the classes they logged with numpy, by the same rule, so that a run
of an ONNX file imports no torch: ``fnnkit.bench.scenarios.loadgen.score_accuracy``.)

Every caller has something that maps float32 inputs [N, 784] to logits [N, 10] (a module, a
Predictor's ``predict``, an exported file's runner); ``logits_of`` runs it in chunks that bound
device memory, and ``top1`` turns logits — or predicted classes — into percent correct.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

CHUNK = 4096  # rows per call: bounds device memory on the full 10k test set, ~1 call on the sample

Run = Callable[[torch.Tensor], torch.Tensor]  # float32 [N, 784] -> logits [N, 10]


@torch.no_grad()
def logits_of(run: Run, inputs: torch.Tensor, chunk: int = CHUNK) -> torch.Tensor:
    """``run`` over every row of ``inputs``, ``chunk`` rows per call, as one CPU float32 tensor."""
    parts = [run(inputs[start : start + chunk]) for start in range(0, len(inputs), chunk)]
    return torch.cat([p.detach().to("cpu", torch.float32) for p in parts])


def top1(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Percent of rows whose class equals the label; ``predicted`` is logits [N, C] or classes [N]."""
    classes = predicted.argmax(dim=1) if predicted.dim() == 2 else predicted
    return 100.0 * float((classes.to(labels.device) == labels).float().mean())


def accuracy(run: Run, inputs: torch.Tensor, labels: torch.Tensor, chunk: int = CHUNK) -> float:
    """Top-1 test accuracy in percent of anything that maps inputs to logits."""
    return top1(logits_of(run, inputs, chunk), labels.cpu())
