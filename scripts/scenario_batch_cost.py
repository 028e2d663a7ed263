"""What one batch costs the load-scenario worker: the previous path against a bound batch.

Usage: python scripts/scenario_batch_cost.py [artifacts/mnist/C]

previous: gather into a new array, ``Predictor.predict`` (a new IOBinding per batch, then a copy of
the logits); bound: gather into the batch size's bound input (``Predictor.bound``), one run, no copy.
ONNX Runtime, 1 thread, batch 1 and 4; median of 5 interleaved rounds of 20,000 batches.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from fnnkit.backends import get_backend


def main(folder: str = "artifacts/mnist/C") -> None:
    predictor = get_backend("onnxruntime").load(folder, "cpu", 1)
    rows = np.random.default_rng(0).random((10_000, 784), dtype=np.float32)
    for n in (1, 4):
        indices = list(range(n))
        bound = predictor.bound(n)

        def previous(indices=indices):
            return predictor.predict(rows.take(indices, axis=0))

        def bound_run(indices=indices, bound=bound):
            rows.take(indices, axis=0, out=bound.host)
            return bound.run()

        times: dict[str, list[float]] = {"previous": [], "bound": []}
        for _ in range(5):
            for name, call in (("previous", previous), ("bound", bound_run)):
                for _ in range(2_000):
                    call()
                started = time.perf_counter_ns()
                for _ in range(20_000):
                    call()
                times[name].append((time.perf_counter_ns() - started) / 20_000 / 1e3)
        print(
            f"batch {n}: previous path {statistics.median(times['previous']):.2f} µs/batch, "
            f"bound {statistics.median(times['bound']):.2f} µs/batch"
        )


if __name__ == "__main__":
    main(*sys.argv[1:2])
