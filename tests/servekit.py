"""One exported copy of variant C (onnx + onnx-int8) shared by the predict, serve and Triton tests."""

from __future__ import annotations

import shutil
from pathlib import Path

DATASET = "mnist-sample"
_exported: dict[Path, Path] = {}


def exported_c(trained_root: Path, tmp_path_factory) -> Path:
    """An artifacts root holding only variant C, exported once per session (not in ``trained_root``: others own it)."""
    from fnnkit.export import export_variant

    if trained_root not in _exported:
        root = tmp_path_factory.mktemp("exported-c") / "artifacts"
        shutil.copytree(trained_root / DATASET / "C", root / DATASET / "C")
        export_variant(root / DATASET / "C", "onnx,onnx-int8", device="cpu")
        _exported[trained_root] = root
    return _exported[trained_root]
