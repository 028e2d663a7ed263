"""What the portable .pt2 costs: the same variant compiled for avx2 and for this CPU (native), timed side by side.

    .venv/bin/python scripts/compare_isa.py --artifacts artifacts --dataset mnist --variant A --batch 1024

Both packages are exported into private copies of the variant folder (the original is left
alone), loaded with fnnkit's own loader, and timed in alternating rounds in one process, so
machine noise hits both alike. Prints the median per-call time of each and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=lambda p: Path(p).expanduser().resolve(), default="artifacts")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--variant", default="A")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()

    from fnnkit.backends import get_backend
    from fnnkit.export import export_variant, get_format

    source = args.artifacts / args.dataset / args.variant
    predictors, x = {}, torch.rand(args.batch, 784).numpy()
    with tempfile.TemporaryDirectory() as scratch:
        for isa in ("avx2", "native"):
            folder = Path(scratch) / isa / args.dataset / args.variant
            shutil.copytree(source, folder)
            export_variant(folder, [get_format("compiled")], isa=isa, force=True)
            predictors[isa] = get_backend("aoti").load(folder, "cpu", args.threads)
        prepared = {isa: p.prepare(x) for isa, p in predictors.items()}
        for p in predictors.values():
            p.warmup(args.batch)
        times: dict[str, list[float]] = {isa: [] for isa in predictors}
        for _ in range(args.rounds):
            for isa, p in predictors.items():
                started = time.perf_counter()
                for _ in range(args.calls):
                    p(prepared[isa])
                times[isa].append((time.perf_counter() - started) / args.calls)
    median = {isa: statistics.median(t) for isa, t in times.items()}
    for isa, seconds in median.items():
        print(f"{isa:7s} batch {args.batch}: {seconds * 1e6:9.1f} us/call, {args.batch / seconds / 1e6:.3f}M samples/s")
    print(f"portable (avx2) / native time ratio: {median['avx2'] / median['native']:.3f}")


if __name__ == "__main__":
    main()
