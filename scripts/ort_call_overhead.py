"""Cost of ONNX Runtime's public ``session.run_with_iobinding(binding)`` against the private C++ entry point.

fnnkit's ORT predictor calls the public API (issue 11); before, it called
``session._sess.run_with_iobinding(binding._iobinding, None)``, one Python frame less. This
times both on the same session, the same binding, interleaved round by round, so machine
noise hits both alike, and prints the median per-call time of each and their ratio.

    .venv/bin/python scripts/ort_call_overhead.py --variant A --batch 1 --rounds 200 --calls 200
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from fnnkit.backends import get_backend
from fnnkit.bench import BenchConfig, prepare_artifacts
from fnnkit.store import find_variant_dir


def per_call_us(fn, calls: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - started) / calls / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="A")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        config = BenchConfig(
            variants=(args.variant,), backends=("onnxruntime",), artifacts=root, dataset="mnist-sample"
        )
        prepare_artifacts(config)
        folder = find_variant_dir(root, args.variant, "mnist-sample")
        predictor = get_backend("onnxruntime").load(folder, "cpu", threads=1)
        batch = predictor.prepare(torch.rand(args.batch, 784).numpy())
        session, binding = predictor.session, batch.binding
        private = session._sess.run_with_iobinding  # what fnnkit called before issue 11
        ways = {
            "public predictor(batch)": lambda: predictor(batch),
            "public session.run_with_iobinding": lambda: session.run_with_iobinding(binding),
            "private _sess.run_with_iobinding": lambda: private(binding._iobinding, None),
        }
        for fn in ways.values():  # warm up
            per_call_us(fn, args.calls)
        samples: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name, fn in ways.items():
                samples[name].append(per_call_us(fn, args.calls))
    base = statistics.median(samples["private _sess.run_with_iobinding"])
    print(f"variant {args.variant}, batch {args.batch}, 1 thread, {args.rounds} rounds x {args.calls} calls")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"  {name:36s} median {median:8.3f} us/call  ({median / base:5.3f}x private)")


if __name__ == "__main__":
    main()
