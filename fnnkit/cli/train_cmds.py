"""`fnnkit train`, `fnnkit evaluate`, `fnnkit info`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fnnkit.cli import app
from fnnkit.cli.options import (
    ARTIFACTS,
    DATA_DIR,
    DATASET,
    DEVICE,
    SEED_MAX,
    TRAINED_DATASET,
    VARIANT,
    number,
    output_path,
)
from fnnkit.cli.plots import plot_training_curves
from fnnkit.cli.render import console, environment_table, evaluate_table, fetch_progress, training_table


@app.command()
def train(
    variant: str = VARIANT,
    dataset: str = DATASET,
    iters: int = number(3000, "--iters", "Training iterations (SGD steps).", 1, 10**8),
    batch_size: int = number(100, "--batch-size", "Training batch size.", 1, 60_000),
    lr: float = number(0.1, "--lr", "SGD learning rate.", 0, 1e300, above=True),  # finite > 0; fit() reports divergence
    eval_every: int = number(500, "--eval-every", "Evaluate on the test set every N iterations.", 1, 10**8),
    seed: int = number(0, "--seed", "Seeds weights and shuffling: same seed on CPU, same weights.", 0, SEED_MAX),
    device: Any = DEVICE,
    data_dir: Path | None = DATA_DIR,
    download: bool = typer.Option(True, "--download/--no-download", help="Allow fetching MNIST when it is not local."),
    artifacts: Path = ARTIFACTS,
    plot: Path | None = output_path("--plot", "Curves PNG \\[default: <artifacts>/<dataset>/training_curves.png]."),
    replace_worse: bool = typer.Option(
        False,
        "--replace-worse",
        help="Save the new model even when it ends at chance level or more than 10 points of test accuracy below "
        "the model it replaces (by default that one is kept and the run is reported, not saved).",
    ),
) -> None:
    """Train variants and write artifacts/<dataset>/<variant>/model.{safetensors,json}.

    Example: fnnkit train --variant all --dataset auto
    """
    from fnnkit.data import default_data_dir, load_dataset
    from fnnkit.train import TrainConfig
    from fnnkit.train_many import default_workers, train_and_save_many
    from fnnkit.variants import resolve_variants

    specs = resolve_variants(variant)
    config = TrainConfig(iterations=iters, batch_size=batch_size, learning_rate=lr, eval_every=eval_every, seed=seed)
    with fetch_progress() as show:
        data = load_dataset(dataset, data_dir=data_dir or default_data_dir(), download=download, progress=show)
    workers = default_workers(len(specs)) if device.type == "cpu" else 1
    console.print(
        f"dataset [bold]{data.info.name}[/] from {data.info.source}: "
        f"{data.info.train_size:,} train / {data.info.test_size:,} test images; device [bold]{device}[/]"
        + (f", {workers} variants at a time, 1 thread each" if workers > 1 else "")
    )
    if data.info.note:
        console.print(f"[yellow]note:[/] {data.info.note}")

    with Progress(
        TextColumn("[bold]{task.fields[variant]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks = {
            spec.name: progress.add_task("train", total=config.iterations, variant=spec.name, loss="-", acc="-")
            for spec in specs
        }

        def show_training(name: str, iteration: int, loss: float, accuracy: float | None) -> None:
            fields = {"loss": f"{loss:.4f}"}
            if accuracy is not None:
                fields["acc"] = f"{accuracy:.2f}%"
            progress.update(tasks[name], completed=iteration, **fields)

        records = train_and_save_many(
            specs, data, artifacts, config, device, show_training, workers, replace_worse=replace_worse
        )

    console.print(training_table(records))
    curves = plot_training_curves(records, plot or artifacts / data.info.name / "training_curves.png")
    console.print(f"artifacts in [bold]{artifacts / data.info.name}[/]; curves in [bold]{curves}[/]")


@app.command()
def evaluate(
    variant: str = VARIANT,
    dataset: str = TRAINED_DATASET,
    device: Any = DEVICE,
    backend: str = typer.Option("eager", "--backend", "-b", help="Backend to run the model with: `fnnkit backends`."),
    data_dir: Path | None = DATA_DIR,
    artifacts: Path = ARTIFACTS,
) -> None:
    """Re-measure test accuracy of trained variants with any backend (files verified by sha256 first).

    Example: fnnkit evaluate --variant C --backend onnxruntime
    """
    import torch

    from fnnkit.backends import get_backend
    from fnnkit.data import default_data_dir, load_dataset, preprocess
    from fnnkit.metrics import top1
    from fnnkit.store import find_variant_dir, read_model_card
    from fnnkit.variants import resolve_variants

    runner = get_backend(backend)
    rows = []
    cache: dict[str, tuple] = {}
    for spec in resolve_variants(variant):
        folder = find_variant_dir(artifacts, spec.name, dataset)
        card = read_model_card(folder)
        predictor = runner.load(folder, device.type, torch.get_num_threads())
        name = card["dataset"]["name"]
        if name not in cache:
            data = load_dataset(name, data_dir=data_dir or default_data_dir(), download=False)
            cache[name] = (preprocess(data.test_x), data.test_y)
        inputs, labels = cache[name]
        measured = top1(torch.from_numpy(predictor.logits(inputs.numpy())), labels)  # the path bench times
        rows.append((spec.name, name, card["test_accuracy"], measured, runner.name, str(device)))
    console.print(evaluate_table(rows))


@app.command()
def info(
    data_dir: Path | None = DATA_DIR,
    artifacts: Path = ARTIFACTS,
) -> None:
    """Versions, devices, datasets available here, and trained models found.

    Example: fnnkit info
    """
    from fnnkit.data import dataset_status, default_data_dir
    from fnnkit.env import environment
    from fnnkit.store import trained_datasets

    found = trained_datasets(artifacts)
    trained = ", ".join(str(artifacts / d) for d in found) if found else f"none under {artifacts}"
    console.print(environment_table(environment(), dataset_status(data_dir or default_data_dir()), trained))


__all__ = ["train", "evaluate", "info"]
