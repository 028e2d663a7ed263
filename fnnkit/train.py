"""Training and evaluation: the tutorial's recipe, with the data held as one tensor.

The original recipe (torchvision dataset + ToTensor + DataLoader) spends most of its time
turning one PIL image at a time into a tensor. Here the whole dataset is preprocessed once
into a float32 tensor on the training device, each batch is gathered from a shuffled index,
and the SGD step is written out (fnnkit.sgd): the same mathematics as autograd + optim.SGD
in a third of the tensor operations, so an iteration costs what the network's matmuls cost.

On CPU every variant trains on exactly one thread, whatever else runs: batch-100 matmuls
gain little from a second thread, a second spinning thread collapses when another process
takes a core, and a fixed thread count keeps the weights bit-identical per seed whether the
variants are trained one after another or in parallel worker processes (fnnkit.train_many).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from fnnkit import metrics
from fnnkit.data import Dataset, DatasetInfo, preprocess
from fnnkit.errors import ConfigError, FnnkitError
from fnnkit.network import FeedForward, build
from fnnkit.sgd import sgd_step
from fnnkit.variants import VariantSpec

TRAIN_THREADS = 1  # per variant on CPU: see the module docstring
PROGRESS_EVERY = 50  # iterations between progress reports (and at every evaluation): a live bar, not a log


class TrainingDiverged(FnnkitError):
    """The loss or the weights became NaN/inf: nothing is saved, the previous model stays."""


@dataclass(frozen=True)
class TrainConfig:
    """The tutorial's hyper-parameters are the defaults."""

    iterations: int = 3000
    batch_size: int = 100
    learning_rate: float = 0.1
    eval_every: int = 500  # the tutorial printed test accuracy every 500 iterations
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(self, name)}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"--lr must be a positive finite number, got {self.learning_rate}")


@dataclass(frozen=True)
class EvalPoint:
    iteration: int
    train_loss: float  # mean training loss since the previous evaluation
    test_accuracy: float  # percent


@dataclass(frozen=True)
class TrainRecord:
    spec: VariantSpec
    config: TrainConfig
    dataset: DatasetInfo
    device: str
    history: list[EvalPoint] = field(default_factory=list)
    train_seconds: float = 0.0
    threads: int = 1

    @property
    def test_accuracy(self) -> float:
        return self.history[-1].test_accuracy

    @property
    def best_test_accuracy(self) -> float:
        return max(point.test_accuracy for point in self.history)

    @property
    def samples_per_second(self) -> float:
        return self.config.iterations * self.config.batch_size / self.train_seconds


# The tutorial's published test accuracy (%) on full MNIST after 3000 iterations of its recipe.
PUBLISHED_ACCURACY = {"A": 91.0, "B": 95.0, "C": 95.0, "D": 96.0, "E": 97.0}
PUBLISHED_DATASET = "mnist"


def published_accuracy(record: TrainRecord) -> float | None:
    """The tutorial's number for this run, if it is comparable: full MNIST, the tutorial's recipe."""
    default = TrainConfig()
    recipe = (record.config.iterations, record.config.batch_size, record.config.learning_rate)
    same_recipe = recipe == (default.iterations, default.batch_size, default.learning_rate)
    full = record.dataset.name == PUBLISHED_DATASET and record.dataset.train_size == 60_000
    full = full and record.dataset.official is not False  # other files under the name mnist are not comparable
    return PUBLISHED_ACCURACY.get(record.spec.name) if same_recipe and full else None


@dataclass(frozen=True)
class Prepared:
    """The dataset as the training loop consumes it: float32 [N, 784] on the device, made once."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    info: DatasetInfo

    @classmethod
    def of(cls, data: Dataset, device: torch.device = torch.device("cpu")) -> Prepared:
        with threads(TRAIN_THREADS if device.type == "cpu" else torch.get_num_threads()):
            return cls(
                preprocess(data.train_x).to(device),
                data.train_y.to(device),
                preprocess(data.test_x).to(device),
                data.test_y.to(device),
                data.info,
            )


@contextlib.contextmanager
def threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set for a block, then restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# Progress callback: (iteration, latest train loss, latest test accuracy or None).
ProgressFn = Callable[[int, float, float | None], None]


def evaluate(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int = 10_000) -> float:
    """Top-1 accuracy in percent of ``model`` on preprocessed ``inputs`` (eval mode, then back)."""
    was_training = model.training
    model.eval()
    try:
        return metrics.accuracy(model, inputs, labels, chunk=batch_size)
    finally:
        model.train(was_training)


def fit(
    spec: VariantSpec,
    data: Dataset | Prepared,
    config: TrainConfig = TrainConfig(),
    device: torch.device = torch.device("cpu"),
    on_progress: ProgressFn | None = None,
) -> tuple[FeedForward, TrainRecord]:
    """Train one variant from scratch; the same seed on CPU gives bit-identical weights.

    Raises TrainingDiverged (checked at every evaluation and at the end) if the loss or the
    weights stop being finite, so a diverged model is never returned, let alone saved.
    """
    prepared = data if isinstance(data, Prepared) else Prepared.of(data, device)
    if prepared.train_x.device.type != device.type:
        prepared = Prepared(*(t.to(device) for t in astuple_tensors(prepared)), prepared.info)
    with threads(TRAIN_THREADS if device.type == "cpu" else torch.get_num_threads()):
        return _fit(spec, prepared, config, device, on_progress)


def astuple_tensors(prepared: Prepared) -> tuple[torch.Tensor, ...]:
    return prepared.train_x, prepared.train_y, prepared.test_x, prepared.test_y


def _fit(
    spec: VariantSpec,
    data: Prepared,
    config: TrainConfig,
    device: torch.device,
    on_progress: ProgressFn | None,
) -> tuple[FeedForward, TrainRecord]:
    train_x, train_y, test_x, test_y = astuple_tensors(data)
    if train_x.shape[0] < config.batch_size:
        raise ConfigError(f"--batch-size {config.batch_size} exceeds the {train_x.shape[0]} training samples")
    _warm_up(spec, train_x[: config.batch_size], train_y[: config.batch_size], device)  # leaves the RNG untouched
    torch.manual_seed(config.seed)
    model = build(spec).to(device)
    step = sgd_step(model, config.learning_rate)
    shuffle = torch.Generator(device=device).manual_seed(config.seed)
    batches_per_epoch = train_x.shape[0] // config.batch_size  # the tail smaller than a batch is skipped
    batch_x = torch.empty((config.batch_size, train_x.shape[1]), dtype=train_x.dtype, device=device)
    batch_y = torch.empty(config.batch_size, dtype=train_y.dtype, device=device)

    history: list[EvalPoint] = []
    loss_sum = torch.zeros((), device=device)  # accumulated on device: no sync per step
    loss_count = 0
    order = torch.empty(0, dtype=torch.long, device=device)
    _synchronize(device)
    started = time.perf_counter()
    with torch.no_grad():
        for iteration in range(1, config.iterations + 1):
            position = (iteration - 1) % batches_per_epoch
            if position == 0:
                order = torch.randperm(train_x.shape[0], generator=shuffle, device=device)
            index = order[position * config.batch_size : (position + 1) * config.batch_size]
            torch.index_select(train_x, 0, index, out=batch_x)
            torch.index_select(train_y, 0, index, out=batch_y)
            loss = step(batch_x, batch_y)
            loss_sum += loss
            loss_count += 1

            accuracy = None
            if iteration % config.eval_every == 0 or iteration == config.iterations:
                mean_loss = loss_sum.item() / loss_count
                _check_finite(model, mean_loss, iteration, config)
                accuracy = evaluate(model, test_x, test_y)
                history.append(EvalPoint(iteration, mean_loss, accuracy))
                loss_sum.zero_()
                loss_count = 0
            if on_progress is not None and (accuracy is not None or iteration % PROGRESS_EVERY == 0):
                on_progress(iteration, loss.item(), accuracy)
    _synchronize(device)
    elapsed = time.perf_counter() - started

    record = TrainRecord(
        spec=spec,
        config=config,
        dataset=data.info,
        device=str(device),
        history=history,
        train_seconds=elapsed,
        threads=torch.get_num_threads(),
    )
    return model.cpu().eval(), record


def _check_finite(model: nn.Module, mean_loss: float, iteration: int, config: TrainConfig) -> None:
    bad = [] if math.isfinite(mean_loss) else [f"the training loss is {mean_loss}"]
    bad += [f"{name} holds {'NaN' if p.isnan().any() else 'inf'}" for name, p in model.named_parameters()
            if not bool(torch.isfinite(p).all())]  # fmt: skip
    if bad:
        raise TrainingDiverged(
            f"training {model.spec.name} diverged by iteration {iteration} ({'; '.join(bad[:2])}) with --lr "
            f"{config.learning_rate}: nothing was saved and any previous model is untouched; try a smaller --lr"
        )


def _warm_up(spec: VariantSpec, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> None:
    """One throwaway step, so one-time library start-up is not billed to the first variant's speed
    (run before seeding: the seeded stream that follows is untouched)."""
    with torch.no_grad():
        sgd_step(build(spec).to(device), 0.0)(x, y)
    _synchronize(device)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_card(record: TrainRecord) -> dict:
    """The JSON that travels with the weights (store.save_trained adds their sha256)."""
    from fnnkit.env import versions
    from fnnkit.store import MODEL_SCHEMA

    return {
        "schema": MODEL_SCHEMA,
        "variant": asdict(record.spec) | {"description": record.spec.description},
        "parameters": record.spec.num_parameters,
        "dataset": asdict(record.dataset),
        "preprocessing": {
            "input": "uint8 images [N, 28, 28] -> float32 [N, 784], pixel / 255 (as ToTensor), no normalisation",
            "input_name": "input",
            "input_shape": ["batch", 784],
            "output_name": "logits",
            "output_shape": ["batch", 10],
        },
        "hyperparameters": asdict(record.config) | {"optimizer": "SGD", "loss": "cross-entropy"},
        "history": [asdict(point) for point in record.history],
        "test_accuracy": record.test_accuracy,
        "best_test_accuracy": record.best_test_accuracy,
        "train_seconds": round(record.train_seconds, 3),
        "samples_per_second": round(record.samples_per_second, 1),
        "device": record.device,
        "threads": record.threads,
        "seed": record.config.seed,
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def train_and_save(
    spec: VariantSpec,
    data: Dataset,
    artifacts_root,
    config: TrainConfig = TrainConfig(),
    device: torch.device = torch.device("cpu"),
    on_progress: ProgressFn | None = None,
    *,
    replace_worse: bool = False,
) -> TrainRecord:
    """fit() then write ``<root>/<dataset>/<variant>/model.{safetensors,json}`` atomically; a run at chance
    level or far below the model it would replace keeps that one (``store.refuse_worse``) unless ``replace_worse``."""
    from fnnkit.store import ensure_writable_dir, save_trained, variant_dir

    folder = variant_dir(artifacts_root, data.info.name, spec.name)
    ensure_writable_dir(folder)  # fail before minutes of training, not after
    model, record = fit(spec, data, config, device, on_progress)
    save_trained(folder, model.state_dict(), model_card(record), replace_worse=replace_worse)
    return record
