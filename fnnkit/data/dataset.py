"""The in-memory dataset every stage consumes, and the one preprocessing step the tutorial used.

Loaders read numpy arrays (``DatasetArrays``), so a process that only checks an exported file's
accuracy (a bench worker running ONNX Runtime) needs no torch. ``Dataset`` holds the same arrays
as torch tensors (``torch.from_numpy``: shared memory, no copy), for training and export.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

DIGITS = tuple(str(i) for i in range(10))


@dataclass(frozen=True)
class DatasetInfo:
    """Where the data came from: recorded in every artifact's metadata."""

    name: str  # "mnist" | "fashion-mnist" | "mnist-sample"
    source: str  # a folder, a URL or "bundled"
    train_size: int
    test_size: int
    classes: tuple[str, ...] = DIGITS
    note: str = ""  # e.g. which route served full MNIST, or why `auto` fell back to the sample
    official: bool | None = None  # content equals the published files' sha256; None: nothing published to check


@dataclass(frozen=True)
class Dataset:
    train_x: torch.Tensor  # uint8 [N, 28, 28]
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor  # uint8 [M, 28, 28]
    test_y: torch.Tensor  # int64 [M]
    info: DatasetInfo = field(compare=False)


@dataclass(frozen=True)
class DatasetArrays:
    """A dataset as the loaders read it: numpy arrays, no torch."""

    train_x: np.ndarray  # uint8 [N, 28, 28]
    train_y: np.ndarray  # int64 [N]
    test_x: np.ndarray  # uint8 [M, 28, 28]
    test_y: np.ndarray  # int64 [M]
    info: DatasetInfo = field(compare=False)

    def as_torch(self) -> Dataset:
        """The same arrays as tensors, sharing their memory."""
        import torch

        tensors = (torch.from_numpy(a) for a in (self.train_x, self.train_y, self.test_x, self.test_y))
        return Dataset(*tensors, info=self.info)

    def test_arrays(self) -> TestArrays:
        """The test split preprocessed (``preprocess_array``), with its labels."""
        return preprocess_array(self.test_x), self.test_y


TestArrays = tuple[np.ndarray, np.ndarray]  # preprocessed float32 [N, 784], labels int64 [N]
TestSet = tuple["torch.Tensor", "torch.Tensor"]  # the same two arrays as tensors (shared memory)


def preprocess_array(images: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 [N, 28, 28] -> float32 [N, 784] in [0, 1]: exactly what ToTensor + view(-1, 784) gave.

    The one preprocessing rule: ``preprocess`` (tensors) runs this function. A float32 true division,
    as torch's ``div`` by a scalar does, so the two agree bit for bit on all 256 pixel values. One pass,
    into ``out`` (float32 [N, 784]) when given.
    """
    flat = images.reshape(images.shape[0], -1)
    if out is None:
        out = np.empty(flat.shape, np.float32)
    return np.divide(flat, np.float32(255.0), out=out, dtype=np.float32)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """``preprocess_array`` on a uint8 CPU tensor, written into a new tensor.

    The tensor is torch's own allocation: numpy asks the kernel for huge pages on large arrays, and
    their first touch cost 0.42 s for full MNIST's training images here (madvise mode), against 0.08 s.
    """
    import torch

    out = torch.empty((images.shape[0], math.prod(images.shape[1:])), dtype=torch.float32)
    preprocess_array(images.numpy(), out.numpy())
    return out
