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
from fnnkit.export.core import is_exported
from fnnkit.registry import DEVICES
from fnnkit.store import Artifact
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

    def bound(self, batch: int) -> Bound:
        """A reusable batch of ``batch`` rows: fill ``.host`` in place, then ``.run()``; nothing allocated per call.

        Load scenarios call the model thousands of times a second at small batch sizes, where
        building a new input binding and copying the logits back cost as much as the model.
        This default re-prepares the host array on every run (correct for any backend);
        backends whose prepared input aliases ``.host`` override it with a truly bound one.
        """
        return _Reprepared(self, batch)


class Bound(ABC):
    """One batch size, bound once: ``host`` is float32 [batch, 784] to be written in place."""

    host: Any  # numpy float32 [batch, INPUT_DIM], C-contiguous

    @abstractmethod
    def run(self) -> Any:
        """Logits for the rows now in ``host``, in the backend's own format (valid until the next run)."""

    @abstractmethod
    def classes(self, logits: Any) -> Any:
        """The predicted class of each row as a numpy int32 array (a copy: the caller may keep it)."""


class _Reprepared(Bound):
    """Any Predictor: ``host`` as a tensor view, prepared on every run (a copy when the backend needs one)."""

    def __init__(self, predictor: Predictor, batch: int) -> None:
        import numpy as np

        self.predictor = predictor
        self.host = np.zeros((batch, INPUT_DIM), np.float32)
        self._tensor = torch.from_numpy(self.host)

    def run(self) -> Any:
        return self.predictor(self.predictor.prepare(self._tensor))

    def classes(self, logits: Any) -> Any:
        return self.predictor.to_host(logits).argmax(dim=1).numpy().astype("<i4")


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
    # how its idle threads' waiting is switched: "omp" (OMP_WAIT_POLICY), "onnxruntime" (session spinning), "" none
    wait_switch: ClassVar[str] = "omp"
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
        artifact = Artifact.at(variant_dir)
        if not artifact.trained:
            return f"no trained model in {artifact.folder}: {artifact.train_command()}"
        if self.export_format is None or is_exported(artifact.folder, self.export_format, device):
            return None
        command = artifact.export_command([self.export_format], device)
        return f"no {self.export_format} export for {device} in {artifact.folder}: {command}"
