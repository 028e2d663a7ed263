"""Names and one helper for the shared artifacts of tests/conftest.py (importable by test modules)."""

from __future__ import annotations

import shutil
from pathlib import Path

DATASET = "mnist-sample"
PT2_VARIANT = "C"  # the one variant whose .pt2 the fast tier compiles: the example, used by most tests


def copy_variants(source_root: Path, target_root: Path, *variants: str) -> Path:
    """``target_root`` holding private copies of ``variants`` from ``source_root``; returns ``target_root``."""
    for name in variants:
        shutil.copytree(source_root / DATASET / name, target_root / DATASET / name)
    return target_root
