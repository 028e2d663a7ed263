"""The in-memory dataset every stage consumes, and the one preprocessing step the tutorial used."""

from __future__ import annotations

from dataclasses import dataclass, field

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


TestSet = tuple[torch.Tensor, torch.Tensor]  # preprocessed float32 [N, 784], labels int64 [N]


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float32 [N, 784] in [0, 1]: exactly what ToTensor + view(-1, 784) gave."""
    return images.reshape(images.shape[0], -1).to(torch.float32).div_(255.0)
