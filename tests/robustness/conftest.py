"""Robustness fixtures: private, damageable copies of the session's shared export of variant C.

Nothing here exports or compiles: ``exported_root`` (tests/conftest.py) holds every CPU format
of C, its ``.pt2`` included; every test damages its own copy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from artifactkit import DATASET, PT2_VARIANT, copy_variants

VARIANT = PT2_VARIANT  # the variant whose .pt2 the session compiles once
assert VARIANT == "C", "these tests name variant C in commands and paths"


@pytest.fixture
def variant(exported_root, tmp_path) -> Path:
    """A private copy of the exported variant C folder, free to damage; its root is ``variant.parent.parent``."""
    return copy_variants(exported_root, tmp_path / "artifacts", VARIANT) / DATASET / VARIANT
