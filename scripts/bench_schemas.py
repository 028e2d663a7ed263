"""Write docs/bench-schemas.md: the JSON Schemas of the bench configs and result files, from their models.

Usage: python scripts/bench_schemas.py
"""

from __future__ import annotations

from pathlib import Path

from fnnkit.bench.schemas import page
from fnnkit.store import atomic_write_bytes

if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "docs" / "bench-schemas.md"
    print(atomic_write_bytes(out, page().encode()))
