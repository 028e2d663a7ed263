"""Shared fixtures: real data (the bundled MNIST sample) and real trained models, made once."""

from __future__ import annotations

import pytest

QUICK_ITERATIONS = 400  # ~10 epochs of the 4,000-image sample: enough for >85% on every variant


@pytest.fixture(scope="session")
def sample_data():
    from fnnkit.data import load_dataset

    return load_dataset("mnist-sample")


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory, sample_data):
    """An artifacts root with all five variants trained briefly on the sample (about 2 s in all)."""
    from fnnkit.train import TrainConfig, train_and_save
    from fnnkit.variants import VARIANTS

    root = tmp_path_factory.mktemp("artifacts")
    config = TrainConfig(iterations=QUICK_ITERATIONS, eval_every=200)
    for spec in VARIANTS.values():
        train_and_save(spec, sample_data, root, config)
    return root
