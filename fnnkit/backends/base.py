"""What every backend is: a Predictor protocol, the Backend base class, and the device vocabulary.

A backend is a small class: ``available(device)`` says whether it can run here and why not,
``load(variant_dir, device, threads)`` returns a Predictor. Backend and device are
orthogonal: every backend names the devices it supports, and a device it cannot use is a
reason, never a silent move to another device.

A Predictor separates *preparing* an input (host float32 -> the backend's own format on its
device: a tensor, or an ONNX Runtime IOBinding with pre-allocated output) from *calling* it,
so a benchmark times only the call. ``predict(x)`` does both and returns CPU float32 logits.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch

from fnnkit.errors import BackendUnavailable, unknown_choice
from fnnkit.export.base import FP32, Tolerance
from fnnkit.export.core import export_command, is_exported
from fnnkit.registry import DEVICES
from fnnkit.store import MODEL_CARD
from fnnkit.variants import INPUT_DIM


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


class Backend(ABC):
    """What every backend declares, and the checks common to all of them."""

    name: ClassVar[str]
    summary: ClassVar[str]
    devices: ClassVar[tuple[str, ...]] = DEVICES
    unsupported: ClassVar[str] = ""  # why a device outside ``devices`` is not offered
    precision: ClassVar[str] = "fp32"
    tolerance: ClassVar[Tolerance] = FP32  # when its logits count as agreeing with eager
    export_format: ClassVar[str | None] = None  # the exported file it runs; None: the trained weights
    # a reduced precision is offered only where the hardware has it natively (fnnkit.capabilities)
    hardware_gated: ClassVar[bool] = False
    # a sample's logits do not depend on the other samples of its batch (within ``tolerance``, same top-1):
    # False for dynamic int8, whose activation ranges come from the whole batch. Serving refuses such backends.
    batch_invariant: ClassVar[bool] = True

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
        folder = Path(variant_dir)
        root = folder.parent.parent
        if not (folder / MODEL_CARD).exists():
            return f"no trained model in {folder}: fnnkit train --variant {folder.name} --artifacts {root}"
        if self.export_format is None or is_exported(folder, self.export_format, device):
            return None
        command = export_command(root, folder.parent.name, [folder.name], [self.export_format], device)
        return f"no {self.export_format} export for {device} in {folder}: {command}"
