"""Options shared by several commands, written once."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from fnnkit.errors import ConfigError
from fnnkit.store import check_output_path

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


SEED_MAX = 2**63 - 1  # torch.manual_seed's range


def number(default: Any, flag: str, help: str, low: float, high: float, *, above: bool = False) -> Any:
    """A numeric option checked at the boundary: finite, ``low <= value <= high`` (``low < value`` with
    ``above``), else one ConfigError line naming the flag and the range, before any work starts."""

    def check(value: Any) -> Any:
        if value is None:
            return value
        finite = not isinstance(value, float) or math.isfinite(value)
        in_range = (value > low if above else value >= low) and value <= high
        if not (finite and in_range):
            if isinstance(value, int):
                kind = "a positive integer" if low == 1 else "an integer"
                raise ConfigError(f"{flag} must be {kind} from {low:g} to {high:g}, got {value}")
            bound = f"> {low:g}" if above else f">= {low:g}"
            raise ConfigError(f"{flag} must be a finite number {bound} and <= {high:g}, got {value}")
        return value

    return typer.Option(default, flag, help=help, callback=check)


def output_path(flag: str, help: str) -> Any:
    """An output file option: refused at once (one line naming ``flag``) if it exists and is not a regular
    file, or its folder is missing or read-only; so nothing is measured or trained for a file that
    cannot be written. ``store.atomic_write`` refuses the same targets again at write time."""
    return typer.Option(None, flag, help=help, callback=lambda value: value and check_output_path(value, flag))
