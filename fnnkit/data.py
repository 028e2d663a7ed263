"""Datasets as in-memory uint8 tensors: MNIST, Fashion-MNIST (IDX files) and the bundled sample.

(The IDX reader, sources, download and `auto` are being written; this header is the contract.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

IMAGE_SHAPE = (28, 28)


@dataclass(frozen=True)
class DatasetInfo:
    """Where the data came from: recorded in every artifact's metadata."""

    name: str  # "mnist" | "fashion-mnist" | "mnist-sample"
    source: str  # a folder, a URL or "bundled"
    train_size: int
    test_size: int
    classes: tuple[str, ...] = tuple(str(i) for i in range(10))
    note: str = ""  # e.g. why `auto` fell back to the sample


@dataclass(frozen=True)
class Dataset:
    train_x: torch.Tensor  # uint8 [N, 28, 28]
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor  # uint8 [M, 28, 28]
    test_y: torch.Tensor  # int64 [M]
    info: DatasetInfo = field(compare=False)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float32 [N, 784] in [0, 1]: exactly what ToTensor + view(-1, 784) gave."""
    return images.reshape(images.shape[0], -1).to(torch.float32).div_(255.0)
