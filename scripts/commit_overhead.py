"""What the one-unit commit costs: two atomic renames (the old save) vs one staged folder swap (the new),
interleaved, 200 saves each of ~1 MB weights + a card beside three other files.

Run from the repository root: ``.venv/bin/python scripts/commit_overhead.py`` (uses a temp folder in the cwd,
so it measures the filesystem the artifacts live on).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from fnnkit.store import atomic_write_bytes, commit_files, folder_lock


def main(rounds: int = 200) -> None:
    data, card = os.urandom(1 << 20), b'{"x": 1}\n' * 100
    with tempfile.TemporaryDirectory(dir=os.getcwd()) as tmp:
        folder = Path(tmp) / "ds" / "E"
        folder.mkdir(parents=True)
        for extra in ("model.onnx", "model.int8.onnx", "model.torchscript.pt"):
            (folder / extra).write_bytes(os.urandom(400_000))
        results: dict[str, list[float]] = {"two renames": [], "staged commit": []}
        for _ in range(rounds):
            for name, times in results.items():
                start = time.perf_counter()
                with folder_lock(folder):
                    if name == "two renames":
                        atomic_write_bytes(folder / "model.safetensors", data)
                        atomic_write_bytes(folder / "model.json", card)
                    else:
                        commit_files(
                            folder,
                            {
                                "model.safetensors": lambda p: p.write_bytes(data),
                                "model.json": lambda p: p.write_bytes(card),
                            },
                        )
                times.append(time.perf_counter() - start)
        for name, times in results.items():
            times.sort()
            median, p90 = times[len(times) // 2], times[int(len(times) * 0.9)]
            print(f"{name:14s} median {1e3 * median:.2f} ms  p90 {1e3 * p90:.2f} ms")


if __name__ == "__main__":
    main()
