"""Shared, session-scoped exports of one variant; tests damage private copies only.

One variant (C) is exported to ONNX, TorchScript and one AOTInductor ``.pt2`` (the only
compile in this suite, ~10-15 s cold); every other fixture copies files, never re-exports.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATASET = "mnist-sample"


@pytest.fixture(scope="session")
def exported_c(trained_root, tmp_path_factory) -> Path:
    """Variant C trained (shared fixture) and exported to onnx, torchscript and compiled (.pt2, CPU)."""
    from fnnkit.export import export_variant

    folder = tmp_path_factory.mktemp("robust") / "artifacts" / DATASET / "C"
    shutil.copytree(trained_root / DATASET / "C", folder)
    export_variant(folder, "onnx,torchscript,compiled", device="cpu")
    return folder


@pytest.fixture
def variant(exported_c, tmp_path) -> Path:
    """A private copy of the exported variant C folder, free to damage; its root is ``variant.parent.parent``."""
    folder = tmp_path / "artifacts" / DATASET / "C"
    shutil.copytree(exported_c, folder)
    return folder
