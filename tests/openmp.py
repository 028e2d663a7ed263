"""OpenMP's thread count as the model's own calls see it: torch's OpenMP runtime, read through ctypes."""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path

import pytest


def openmp_runtime() -> ctypes.CDLL:
    """The OpenMP runtime torch loaded (by its path: the same copy, not a second one); skips where a test of a
    per-thread count cannot fail (no OpenMP runtime in the process, or one core)."""
    maps = Path("/proc/self/maps")
    text = maps.read_text() if maps.is_file() else ""
    found = re.search(r"(/\S*/lib(?:gomp|iomp5|omp)[^/\s]*\.so[^/\s]*)$", text, re.MULTILINE)
    if found is None or (os.cpu_count() or 1) < 2:
        pytest.skip(f"needs torch's OpenMP runtime in /proc/self/maps and 2+ cores (cores: {os.cpu_count()})")
    return ctypes.CDLL(found.group(1))
