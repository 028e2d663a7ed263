from pathlib import Path

import pytest
import torch

from fnnkit.data import preprocess
from fnnkit.errors import ConfigError
from fnnkit.store import load_trained, read_model_card, variant_dir
from fnnkit.train import TrainConfig, evaluate, fit
from fnnkit.variants import VARIANTS

FASHION = Path("/usr/share/datasets/fashion-mnist")
# DATA.md: the original recipe on Fashion-MNIST, mean over seeds 0-2, variant C.
ORIGINAL_RECIPE_C = 85.7

# After 400 iterations (10 epochs) on the 4,000-image sample every variant is far above chance
# (10%) and near its 3000-iteration value (A 89.6, B-E 92.7-93.5); sigmoid (A) learns slowest
# at lr 0.1. Measured: seed 0 A 82.8, B 89.6, C 90.4, D 90.4, E 88.8; seed 1 A 84.0, B 90.3,
# C 91.0, D 90.7, E 89.5. The floors sit ~3 points under the worst seen, so a broken loop fails.
SAMPLE_FLOOR = {"A": 79.0, "B": 86.0, "C": 86.0, "D": 86.0, "E": 85.0}


def test_every_variant_has_an_accuracy_floor():
    assert set(SAMPLE_FLOOR) == set(VARIANTS)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_quick_training_reaches_floor(trained_root, name):
    card = read_model_card(variant_dir(trained_root, "mnist-sample", name))
    assert card["test_accuracy"] >= SAMPLE_FLOOR[name], card["history"]
    assert card["history"][0]["train_loss"] > card["history"][-1]["train_loss"]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_saved_model_reproduces_recorded_accuracy(trained_root, sample_data, name):
    model, card = load_trained(variant_dir(trained_root, "mnist-sample", name))
    measured = evaluate(model, preprocess(sample_data.test_x), sample_data.test_y)
    assert measured == pytest.approx(card["test_accuracy"], abs=1e-9)


def test_same_seed_gives_bit_identical_weights(sample_data):
    config = TrainConfig(iterations=60, eval_every=60, seed=3)
    first, _ = fit(VARIANTS["D"], sample_data, config)
    second, _ = fit(VARIANTS["D"], sample_data, config)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    other, _ = fit(VARIANTS["D"], sample_data, TrainConfig(iterations=60, eval_every=60, seed=4))
    assert not torch.equal(first.state_dict()["layers.0.weight"], other.state_dict()["layers.0.weight"])


def test_history_follows_eval_every(sample_data):
    _, record = fit(VARIANTS["C"], sample_data, TrainConfig(iterations=250, eval_every=100))
    assert [p.iteration for p in record.history] == [100, 200, 250]
    assert record.samples_per_second > 0 and record.test_accuracy == record.history[-1].test_accuracy


def test_progress_callback_sees_every_evaluation(sample_data):
    seen = []
    fit(
        VARIANTS["A"],
        sample_data,
        TrainConfig(iterations=100, eval_every=50),
        on_progress=lambda i, loss, acc: seen.append((i, acc is not None)),
    )
    assert (50, True) in seen and (100, True) in seen and all(i % 50 == 0 for i, _ in seen)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"iterations": 0}, "--iterations"), ({"batch_size": -1}, "--batch-size"), ({"learning_rate": 0}, "--lr")],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kwargs)


def test_batch_larger_than_dataset_is_refused(sample_data):
    with pytest.raises(ConfigError, match="exceeds"):
        fit(VARIANTS["A"], sample_data, TrainConfig(iterations=1, batch_size=10_000))


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason=f"{FASHION} absent: `apt-get install dataset-fashion-mnist` (CI does)")
def test_full_scale_fashion_mnist_matches_original_recipe():
    """The full recipe (3000 iterations, 60k images) lands within 1.5 points of the original code."""
    from fnnkit.data import load_dataset

    data = load_dataset("fashion-mnist", download=False)
    assert data.info.train_size == 60_000 and data.info.test_size == 10_000
    _, record = fit(VARIANTS["C"], data, TrainConfig())
    assert abs(record.test_accuracy - ORIGINAL_RECIPE_C) <= 1.5, record.history
