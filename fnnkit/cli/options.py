"""Options shared by several commands, written once."""

from __future__ import annotations

from pathlib import Path

import typer

ARTIFACTS = typer.Option(
    Path("artifacts"), "--artifacts", envvar="FNNKIT_ARTIFACTS", help="Root folder of trained and exported models."
)
DATA_DIR = typer.Option(
    None,
    "--data-dir",
    envvar="FNNKIT_DATA",
    help="Folder for MNIST / Fashion-MNIST files \\[default: ~/.cache/fnnkit/data].",
)
DEVICE = typer.Option("auto", "--device", help="auto | cpu | cuda ('auto' takes the GPU when there is one).")
VARIANT = typer.Option("all", "--variant", "-v", help="A, B, C, D, E, a comma list, or all.")
DATASET = typer.Option(
    "auto",
    "--dataset",
    "-d",
    help="auto | mnist | fashion-mnist | mnist-sample ('auto': MNIST if reachable, else the sample).",
)
TRAINED_DATASET = typer.Option(
    "auto",
    "--dataset",
    "-d",
    help="Which trained models to use: mnist | fashion-mnist | mnist-sample | auto (best present).",
)
