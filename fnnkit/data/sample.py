"""The bundled sample: 4,000/1,000 real MNIST digits inside the package, so fnnkit works offline."""

from __future__ import annotations

import os
import zipfile
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

from fnnkit.data.dataset import Dataset, DatasetArrays, DatasetInfo
from fnnkit.data.idx import IMAGE_SHAPE, NUM_CLASSES
from fnnkit.errors import DataError

SAMPLE_RESOURCE = "datasets/mnist_sample.npz"  # inside the fnnkit package


def sample_file():  # -> importlib.resources.abc.Traversable
    return resources.files("fnnkit").joinpath(SAMPLE_RESOURCE)


def _sample_array(npz: np.lib.npyio.NpzFile, key: str, shape: tuple[int | None, ...]) -> np.ndarray:
    array = npz[key]
    if array.dtype != np.uint8 or len(array.shape) != len(shape):
        raise ValueError(f"{key}: expected uint8 with {len(shape)} dims, got {array.dtype} {array.shape}")
    if any(want is not None and got != want for got, want in zip(array.shape, shape, strict=True)):
        raise ValueError(f"{key}: expected shape {shape}, got {array.shape}")
    return array


def load_sample(path: str | os.PathLike | None = None) -> Dataset:
    """The bundled 4,000/1,000 MNIST sample (or an npz of the same layout at ``path``), as tensors."""
    return read_sample(path).as_torch()


def read_sample(path: str | os.PathLike | None = None) -> DatasetArrays:
    """The bundled sample (or an npz of the same layout at ``path``) as numpy arrays."""
    target = sample_file() if path is None else Path(path)
    try:
        with target.open("rb") as f, np.load(f, allow_pickle=False) as npz:
            train_x = _sample_array(npz, "train_x", (None, *IMAGE_SHAPE))
            train_y = _sample_array(npz, "train_y", (len(train_x),))
            test_x = _sample_array(npz, "test_x", (None, *IMAGE_SHAPE))
            test_y = _sample_array(npz, "test_y", (len(test_x),))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(
            f"bundled sample {target} is damaged ({type(exc).__name__}: {exc}); reinstall fnnkit, "
            "or rebuild it with scripts/make_mnist_sample.py"
        ) from None
    for name, labels in (("train_y", train_y), ("test_y", test_y)):
        if labels.size and labels.max() >= NUM_CLASSES:
            raise DataError(f"bundled sample {target} is damaged ({name} holds {labels.max()}); reinstall fnnkit")
    info = DatasetInfo("mnist-sample", "bundled" if path is None else str(path), len(train_x), len(test_x))
    return DatasetArrays(train_x, train_y.astype(np.int64), test_x, test_y.astype(np.int64), info)
