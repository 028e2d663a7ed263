"""Damaged IDX files: every IDX fault is a specific DataError naming the file and field, also under
``python -O`` (which strips asserts): the validation never relies on ``assert``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import REPO, child_env, last_json

SCRIPT = Path(__file__).with_name("damaged_idx_checks.py")


@pytest.mark.slow  # a python -O child that imports torch: ~4 s
def test_idx_faults_are_specific_errors_under_python_O(tmp_path):
    result = subprocess.run([sys.executable, "-O", str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                            env=child_env(), cwd=REPO, timeout=120)  # fmt: skip
    out = last_json(result)
    assert out.pop("optimize") == "1" and out.pop("asserts") == "stripped"
    assert sorted(out) == sorted([
        "bad magic", "unknown type code", "wrong ndim (labels as images)", "zero dims", "payload short",
        "payload long", "truncated gzip", "corrupt gzip (deflate)", "corrupt gzip (crc)", "label count != image count",
        "gzip bomb", "dims overflow", "sparse huge file",
    ])  # fmt: skip
