"""The numpy forward pass bench workers hold every backend to computes what eager PyTorch computes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from artifactkit import DATASET, copy_variants

from fnnkit.data import load_test_arrays
from fnnkit.errors import ArtifactError
from fnnkit.export.parity import reference
from fnnkit.network import FeedForward
from fnnkit.numpy_forward import ACTIVATIONS, forward, trained_logits
from fnnkit.store import WEIGHTS_FILE, Artifact, load_trained
from fnnkit.variants import ACTIVATION_NAMES, VARIANTS, VariantSpec

TOLERANCE = 1e-5  # max |logits - eager logits|; measured 2-6e-6 on the five variants trained on full MNIST


@pytest.fixture(scope="module")
def test_images():
    return load_test_arrays(DATASET)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_trained_logits_are_eager_on_real_test_images(name, trained_root, test_images):
    folder = trained_root / DATASET / name
    inputs, labels = test_images
    model, _card = load_trained(folder)
    eager = reference(model, inputs)
    before = inputs.copy()
    logits = trained_logits(folder, inputs)
    assert logits.dtype == np.float32 and logits.shape == eager.shape == (len(labels), 10)
    assert float(np.abs(logits - eager).max()) <= TOLERANCE
    assert np.array_equal(logits.argmax(axis=1), eager.argmax(axis=1))
    assert np.array_equal(inputs, before)  # the caller's test set is never written


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_any_spec_with_any_weights_even_at_extreme_inputs(activation):
    """A shape outside the table, fresh random weights, pixels far outside [0, 1] (sigmoid's exp overflows)."""
    spec = VariantSpec("W", activation, 3, hidden_dim=17)
    torch.manual_seed(0)
    model = FeedForward(spec).eval()
    weights = {name: t.numpy() for name, t in model.state_dict().items()}
    x = np.random.default_rng(0).normal(0, 300, (2500, 784)).astype(np.float32)  # 2500: a partial last chunk
    with torch.inference_mode():
        eager = model(torch.from_numpy(x)).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow RuntimeWarning reaches a user
        logits = forward(weights, spec, x)
    assert np.isfinite(logits).all()
    np.testing.assert_allclose(logits, eager, rtol=1e-5, atol=1e-4)


def test_every_activation_has_a_numpy_twin():
    assert tuple(ACTIVATIONS) == ACTIVATION_NAMES


def test_weights_are_read_as_every_loader_reads_them(trained_root, tmp_path):
    """The numpy weights are the torch ones; damaged weights are refused (sha256) before a byte is used."""
    root = copy_variants(trained_root, tmp_path, "A")
    folder = root / DATASET / "A"
    artifact = Artifact.at(folder)
    arrays, tensors = artifact.weights("numpy"), artifact.weights()
    assert arrays.keys() == tensors.keys()
    assert all(np.array_equal(arrays[k], tensors[k].numpy()) for k in arrays)
    path = folder / WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        trained_logits(folder, np.zeros((1, 784), np.float32))
