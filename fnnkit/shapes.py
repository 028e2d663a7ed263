"""The data's shape, which decides the networks' ends: torch-free, so every room can name it."""

from __future__ import annotations

IMAGE_SHAPE = (28, 28)  # every MNIST-format dataset: 28x28 grey pixels...
INPUT_DIM = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]  # ...flattened to 784 inputs
NUM_CLASSES = 10  # ...and ten classes
