"""Shared, session-scoped artifacts: real data, real trained models, real exports, each made once.

The expensive steps happen here and nowhere else: five variants trained (~2 s), every variant
exported to every CPU format (seconds), and AOTInductor ``.pt2`` packages, the real cost
(~10-15 s per compile, cold). The fast tier compiles one package (variant ``PT2_VARIANT``);
``compiled_root`` adds the other four, only for the ``slow`` tests that need every variant's.
Tests never write into these roots: they copy folders first (``artifactkit.copy_variants``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from artifactkit import DATASET, PT2_VARIANT, copy_variants
from clitools import fnnkit_in_process

from fnnkit.data import load_dataset
from fnnkit.export import FORMATS, export_variant, get_format
from fnnkit.train import TrainConfig, train_and_save
from fnnkit.variants import VARIANTS

QUICK_ITERATIONS = 400  # ~10 epochs of the 4,000-image sample: enough for >85% on every variant
PLAIN_FORMATS = [fmt for name, fmt in FORMATS.items() if name != "compiled"]  # cheap: export + parity, no compiler


@pytest.fixture(scope="session")
def sample_data():
    return load_dataset("mnist-sample")


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory, sample_data):
    """An artifacts root with all five variants trained briefly on the sample (about 2 s in all)."""
    root = tmp_path_factory.mktemp("artifacts")
    config = TrainConfig(iterations=QUICK_ITERATIONS, eval_every=200)
    for spec in VARIANTS.values():
        train_and_save(spec, sample_data, root, config)
    return root


@pytest.fixture(scope="session")
def exported_root(trained_root, tmp_path_factory) -> Path:
    """A copy of ``trained_root``: every variant in every CPU format, plus ``model.pt2`` for ``PT2_VARIANT``.

    Read-only for tests: copy a folder (``copy_variants``) before changing anything in it.
    """
    root = tmp_path_factory.mktemp("exported") / "artifacts"
    shutil.copytree(trained_root, root)
    for name in VARIANTS:
        extra = [get_format("compiled")] if name == PT2_VARIANT else []
        export_variant(root / DATASET / name, PLAIN_FORMATS + extra, device="cpu")
    return root


@pytest.fixture(scope="session")
def compiled_root(exported_root, tmp_path_factory) -> Path:
    """``exported_root`` with a ``model.pt2`` for every variant (four more compiles: ``slow`` tests only).

    ``PT2_VARIANT``'s package is copied and reused, so each variant is compiled once per session.
    """
    root = tmp_path_factory.mktemp("compiled") / "artifacts"
    shutil.copytree(exported_root, root)
    for name in VARIANTS:
        export_variant(root / DATASET / name, [get_format("compiled")], device="cpu")
    return root


@pytest.fixture(scope="session")
def served_root(exported_root, tmp_path_factory) -> Path:
    """An artifacts root holding only variant C, exported: what predict, serve and Triton tests deploy."""
    return copy_variants(exported_root, tmp_path_factory.mktemp("served") / "artifacts", "C")


@pytest.fixture
def cli(capsys, monkeypatch):
    """The CLI's real entry point in this process: ``cli(*args) -> (exit code, everything printed)``.

    For tests about messages and files; tests about exit codes of a real process, signals or
    isolation use ``clitools.run_fnnkit`` (a subprocess) instead.
    """
    return lambda *args: fnnkit_in_process(capsys, monkeypatch, *args)
