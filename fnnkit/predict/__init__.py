"""`fnnkit predict`: real pictures of digits -> MNIST's 28x28 -> any backend.

Rooms: ``inputs`` (bounded, validated reading of images, .npy and IDX files), ``normalize``
(MNIST's own normalisation), ``run`` (a verified model from the backend registry, predictions).
"""

from __future__ import annotations

from fnnkit.predict.inputs import InputError, Sample, load_samples, save_inputs
from fnnkit.predict.normalize import BlankImage, Normalized, to_mnist
from fnnkit.predict.run import Model, Prediction, load_model, predict, probabilities

__all__ = [
    "BlankImage",
    "InputError",
    "Model",
    "Normalized",
    "Prediction",
    "Sample",
    "load_model",
    "load_samples",
    "predict",
    "probabilities",
    "save_inputs",
    "to_mnist",
]
