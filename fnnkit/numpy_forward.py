"""A trained network's float32 forward pass in numpy: the reference logits where torch is not imported.

``fnnkit.network.FeedForward`` is the network; this computes the same function from its weights
(``model.safetensors`` as numpy arrays, sha256-checked and vetted by ``Artifact.weights``) and the
variant's spec: Linear, activation, ..., Linear. Bench workers hold every backend to these logits,
so a worker running an ONNX file needs numpy and its runtime only. They equal eager PyTorch's
(``fnnkit.export.parity.reference``) within 1e-5 on real test images for every variant
(tests/test_numpy_forward.py); ``fnnkit export`` still proves files against eager PyTorch itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np

from fnnkit.variants import ACTIVATION_NAMES, VariantSpec

CHUNK = 1024  # rows per pass: the float64 copy of one chunk's pixels is 6 MiB


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) overflows to inf below x = -88: 1 / (1 + inf) is the right 0
        np.exp(np.negative(x, out=x), out=x)
    x += 1
    return np.reciprocal(x, out=x)


# name -> the activation applied in place (the network's activations: fnnkit.network.ACTIVATIONS)
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid,
    "tanh": lambda x: np.tanh(x, out=x),
    "relu": lambda x: np.maximum(x, 0, out=x),
}
assert tuple(ACTIVATIONS) == ACTIVATION_NAMES  # one vocabulary: the variant table validates names


def forward(weights: Mapping[str, np.ndarray], spec: VariantSpec, inputs: np.ndarray) -> np.ndarray:
    """Logits float32 [N, 10] of the network ``weights`` holds (state-dict names, ``spec.linear_names``).

    Each Linear layer is accumulated in float64 and rounded to float32 once, so this is the float32
    network with exactly rounded layers: what is left of a difference to eager PyTorch is eager's own
    float32 rounding (max |Δ| 2-6e-6 on full MNIST, against 6-8e-6 for a float32 matmul here).
    ``CHUNK`` rows at a time bound the float64 copies.
    """
    x = np.asarray(inputs, dtype=np.float32)
    layers = [
        (weights[f"{name}.weight"].T.astype(np.float64), weights[f"{name}.bias"].astype(np.float64))
        for name in spec.linear_names
    ]
    out = np.empty((len(x), layers[-1][0].shape[1]), np.float32)
    for start in range(0, len(x), CHUNK):
        h = x[start : start + CHUNK]
        for index, (weight, bias) in enumerate(layers):
            h = (h.astype(np.float64) @ weight + bias).astype(np.float32)
            if index < spec.hidden_layers:
                h = ACTIVATIONS[spec.activation](h)
        out[start : start + CHUNK] = h
    return out


def trained_logits(folder: str | os.PathLike, inputs: np.ndarray) -> np.ndarray:
    """``forward`` with the trained weights in ``folder`` (absolute), read and checked as every loader reads them."""
    from fnnkit.store import Artifact

    artifact = Artifact.at(folder)
    return forward(artifact.weights("numpy"), artifact.spec, inputs)
