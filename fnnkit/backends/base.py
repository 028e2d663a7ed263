"""What every backend is: the Predictor contract, the Backend base class, the tolerance table, devices.

A backend is a small class: ``available(device)`` says whether it can run here and why not,
``open(data, path, device, threads)`` turns a file's sha256-verified bytes into a Predictor, and
``load(variant_dir, device, threads)`` reads those bytes (``fnnkit.formats.manifest``) and opens
them. It is the one way fnnkit runs a file: export parity, bench, the load scenarios, predict and
serve all call the Predictor a backend returns. Backend and device are orthogonal: every backend
names the devices it supports, and a device it cannot use is a reason, never a silent move.

The host boundary is numpy: ``prepare`` takes float32 [N, 784], ``to_host`` / ``predict`` return
float32 [N, 10]. A Predictor separates *preparing* an input (host array -> the backend's own
format on its device) from *calling* it, so a benchmark times only the call; torch backends
convert inside. This module imports no torch, so the ONNX Runtime and OpenVINO paths need none.
"""

from __future__ import annotations

import contextlib
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fnnkit.errors import BackendUnavailable, unknown_choice
from fnnkit.formats.manifest import is_exported, read_exported
from fnnkit.registry import DEVICES
from fnnkit.store import Artifact
from fnnkit.variants import INPUT_DIM

CHUNK = 4096  # rows per call when a whole test set is run: bounds device memory


@dataclass(frozen=True)
class Tolerance:
    """When a backend's logits count as computing what eager PyTorch computes on the whole test set."""

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


# The one tolerance table: each backend names its row (``Backend.tolerance``), and export parity
# holds a file to the row of the backend that proves it.
FP32 = Tolerance(max_abs_diff=1e-4, min_agreement=100.0)
# Reduced precision trades accuracy for speed, so it is judged by what a user sees: the class.
# Measured on the five variants (mnist-sample, tutorial recipe): int8 agrees on 99.6-99.9% with
# accuracy within +0.2 points (max |Δ| up to 0.4); fp16 agrees on 100% (max |Δ| <= 8e-3).
INT8 = Tolerance(max_abs_diff=None, min_agreement=98.0, max_accuracy_drop=1.0)
FP16 = Tolerance(max_abs_diff=None, min_agreement=99.5, max_accuracy_drop=0.5)
BF16 = Tolerance(max_abs_diff=None, min_agreement=99.0, max_accuracy_drop=1.0)  # 8-bit mantissa: looser than fp16


def set_threads(threads: int) -> None:
    """Torch's intra-op thread count, when torch is in this process (a process without torch has no such
    pool; torch backends import torch before they call this). ONNX Runtime and OpenVINO get the same
    number per session.

    Call it in every thread that runs a torch model, not once per process: OpenMP keeps the count per
    thread, and a thread that never set it gives a matmul a team of one thread per core. That team's
    idle thread then spins between calls: in the load scenarios' worker thread (variant C, eager, 1
    thread, 30k q/s on 2 cores) it took 94% of a core and the p99 was 2-14 ms; set in the worker, 0.3-0.6
    ms. ``torch.get_num_threads()`` cannot tell (it answers the process-wide number), so it is set always."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def quiet_logger(name: str = "") -> Iterator[None]:
    """Errors only from one logger (root by default) for a block: for known, unactionable chatter."""
    import logging

    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise unknown_choice("device", device, DEVICES)
    return device


def host_array(x: Any) -> np.ndarray:
    """Host float32 [N, 784] as a C-contiguous numpy array (no copy when it already is one)."""
    return np.ascontiguousarray(x, dtype=np.float32)


# --------------------------------------------------------------------------- predictors


class Predictor(ABC):
    """A loaded model on one device: prepare inputs once, then call it as often as needed."""

    def __init__(self, backend: str, device: str, threads: int) -> None:
        self.backend, self.device, self.threads = backend, device, threads

    @abstractmethod
    def prepare(self, x: np.ndarray) -> Any:
        """Host float32 [N, 784] -> the input this backend consumes, already on its device."""

    @abstractmethod
    def __call__(self, prepared: Any) -> Any:
        """Logits for a prepared input, in the backend's own format and device (not copied back)."""

    @abstractmethod
    def to_host(self, logits: Any) -> np.ndarray:
        """The backend's logits as host float32 [N, 10] (a copy: outputs may be reused)."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """End to end: host float32 [N, 784] -> host float32 logits [N, 10]."""
        return self.to_host(self(self.prepare(x)))

    def synchronize(self) -> None:
        """Wait for queued device work, so a timer stopped after this has seen it all."""
        if self.device == "cuda":  # only a CUDA run needs torch here; CPU predictors return finished work
            import torch

            torch.cuda.synchronize()

    def warmup(self, batch: int, rounds: int = 5) -> None:
        """Run ``rounds`` calls at this batch size: compilers compile, allocators settle, caches fill."""
        prepared = self.prepare(np.random.default_rng(0).random((batch, INPUT_DIM), np.float32))
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
        This default re-prepares the host array on every run and calls ``__call__`` (correct for any
        backend); backends whose prepared input aliases ``.host`` override it with a truly bound one
        whose ``run`` is what their ``__call__`` runs.
        """
        return _Reprepared(self, batch)

    def logits(self, x: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
        """Every row of ``x`` through ``bound(n).run()`` (the call bench times, the load scenarios drive
        and serve deploys), ``chunk`` rows at a time, as host float32 [N, 10]: what export parity and
        accuracy checks run, so they prove the measured path."""
        x = host_array(x)
        bounds: dict[int, Bound] = {}
        parts = []
        for start in range(0, len(x), chunk):
            rows = x[start : start + chunk]
            bound = bounds.get(len(rows)) or bounds.setdefault(len(rows), self.bound(len(rows)))
            bound.host[...] = rows
            parts.append(self.to_host(bound.run()))
        return np.concatenate(parts) if parts else np.zeros((0, 10), np.float32)


class Bound(ABC):
    """One batch size, bound once: ``host`` is float32 [batch, 784] to be written in place."""

    host: np.ndarray  # float32 [batch, INPUT_DIM], C-contiguous

    @abstractmethod
    def run(self) -> Any:
        """Logits for the rows now in ``host``, in the backend's own format (valid until the next run)."""

    @abstractmethod
    def classes(self, logits: Any) -> np.ndarray:
        """The predicted class of each row as a numpy int32 array (a copy: the caller may keep it)."""


class _Reprepared(Bound):
    """Any Predictor: ``host`` prepared on every run (a copy where the backend's device needs one)."""

    def __init__(self, predictor: Predictor, batch: int) -> None:
        self.predictor = predictor
        self.host = np.zeros((batch, INPUT_DIM), np.float32)

    def run(self) -> Any:
        return self.predictor(self.predictor.prepare(self.host))

    def classes(self, logits: Any) -> np.ndarray:
        return self.predictor.to_host(logits).argmax(axis=1).astype("<i4")


class Backend(ABC):
    """What every backend declares, and the checks common to all of them."""

    name: ClassVar[str]
    summary: ClassVar[str]
    devices: ClassVar[tuple[str, ...]] = DEVICES
    unsupported: ClassVar[str] = ""  # why a device outside ``devices`` is not offered
    precision: ClassVar[str] = "fp32"
    tolerance: ClassVar[Tolerance] = FP32  # when its logits count as agreeing with eager (the one table above)
    export_format: ClassVar[str | None] = None  # the exported file it runs; None: the trained weights
    in_all: ClassVar[bool] = True  # whether `--backend all` includes it
    # a reduced precision is offered only where the hardware has it natively (fnnkit.capabilities)
    hardware_gated: ClassVar[bool] = False
    # how its idle threads' waiting is switched: "omp" (OMP_WAIT_POLICY), "onnxruntime" (session spinning), "" none
    wait_switch: ClassVar[str] = "omp"
    # runs in torch (its module imports it). False for ONNX Runtime and OpenVINO: on the CPU their processes import
    # no torch (predict, serve, bench workers, cold start; tests/test_torch_free.py); on CUDA torch finds the GPU
    imports_torch: ClassVar[bool] = False
    # a sample's logits do not depend on the other samples of its batch (within ``tolerance``, same top-1):
    # False for dynamic int8, whose activation ranges come from the whole batch. Serving refuses such backends.
    batch_invariant: ClassVar[bool] = True

    def available(self, device: str) -> tuple[bool, str]:
        """(True, what it runs on) or (False, why not), without loading anything."""
        check_device(device)
        if device not in self.devices:
            return False, self.unsupported or f"{self.name} runs on {', '.join(self.devices)} only"
        if device == "cuda":
            import torch  # the one way fnnkit asks whether a CUDA device exists

            if not torch.cuda.is_available():
                return False, f"no CUDA GPU here (torch {torch.__version__}: torch.cuda.is_available() is False)"
        return self._runtime(device)

    @abstractmethod
    def _runtime(self, device: str) -> tuple[bool, str]:
        """Whether this backend's runtime is installed and works on ``device``, and which one it is."""

    def load(self, variant_dir: str | Path, device: str, threads: int) -> Predictor:
        """A Predictor for the variant in ``variant_dir``; files are sha256-checked before they are parsed."""
        ok, reason = self.available(device)
        if not ok:
            raise BackendUnavailable(f"backend {self.name} cannot run on {device}: {reason}")
        return self._load(Path(variant_dir), device, threads)

    def _load(self, folder: Path, device: str, threads: int) -> Predictor:
        """An exported file's verified, vetted bytes, then ``open`` (weights backends override this)."""
        if self.export_format is None:
            raise NotImplementedError(f"{self.name} runs the trained weights and must define _load")
        data, path = read_exported(folder, self.export_format, device)
        return self.open(data, path, device, threads)

    def open(self, data: bytes, path: Path, device: str, threads: int) -> Predictor:
        """A Predictor on a file's sha256-verified bytes (``path`` names it in messages; it is never reopened).

        Not gated by ``devices`` (that is what ``load`` offers): export parity opens a portable file on the
        device it is exported for, with the backend that proves its format.
        """
        raise BackendUnavailable(f"backend {self.name} runs the trained weights, not an exported file ({path})")

    def missing(self, variant_dir: str | Path, device: str) -> str | None:
        """What this backend needs in ``variant_dir`` that is not there, with the command that makes it."""
        artifact = Artifact.at(variant_dir)
        if not artifact.trained:
            return f"no trained model in {artifact.folder}: {artifact.train_command()}"
        if self.export_format is None or is_exported(artifact.folder, self.export_format, device):
            return None
        command = artifact.export_command([self.export_format], device)
        return f"no {self.export_format} export for {device} in {artifact.folder}: {command}"
