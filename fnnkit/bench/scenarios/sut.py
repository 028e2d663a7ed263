"""The system under test: a dynamic batcher in front of worker threads that call a Predictor.

LoadGen's issue thread only appends ``(ids, indices)`` to a deque (it must return at once,
or arrivals would be late); workers take up to ``max_batch`` samples, waiting at most
``max_queue_delay_us`` after the first for more, gather the preprocessed rows with one
numpy ``take`` straight into the input buffer bound for that batch size
(``Predictor.bound``: one ONNX Runtime IOBinding or OpenVINO request per size, made before
LoadGen starts), call the model once and complete the whole batch with one
``QuerySamplesComplete``. Nothing is allocated per batch on the model's side, and the logits
are never copied in a performance run. Per-sample Python work is one response object:
batching exists because that costs more than the model at batch 1.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np

from fnnkit.backends import Predictor
from fnnkit.backends.base import Bound, set_threads
from fnnkit.variants import INPUT_DIM, NUM_CLASSES

CLASS_BYTES = 4  # each response carries the predicted class as a little-endian int32
PREBIND_UP_TO = 128  # batch sizes bound (and run once) before LoadGen starts; larger ones on first use


class NullPredictor(Predictor):
    """No model: the same batcher, gather and bound buffers, with a call that does nothing.

    Its peak is what the SUT alone (LoadGen, the batcher, the Python per batch) can sustain:
    a true ceiling for every backend, which pays the same costs plus its model.
    """

    def __init__(self, threads: int = 1) -> None:
        super().__init__("null", "cpu", threads)

    def prepare(self, x: Any) -> Any:
        return x

    def __call__(self, prepared: Any) -> Any:
        return np.zeros((len(prepared), NUM_CLASSES), np.float32)

    def to_host(self, logits: Any) -> Any:
        return logits

    def bound(self, batch: int) -> Bound:
        return _NullBound(batch)


class _NullBound(Bound):
    def __init__(self, batch: int) -> None:
        self.host = np.zeros((batch, INPUT_DIM), np.float32)
        self.logits = np.zeros((batch, NUM_CLASSES), np.float32)

    def run(self) -> Any:
        return self.logits

    def classes(self, logits: Any) -> Any:
        return logits.argmax(axis=1).astype("<i4")


class BatchingSUT:
    """Queue, batch, predict, complete. ``start`` before LoadGen runs, ``stop`` after it returns."""

    def __init__(
        self,
        predictor: Predictor,
        inputs: Any,
        max_batch: int,
        max_queue_delay_us: float,
        workers: int = 1,
        with_data: bool = False,
    ) -> None:
        self.predictor = predictor
        self.inputs = np.ascontiguousarray(np.asarray(inputs, dtype=np.float32))  # numpy's take: cheaper than torch's
        self.max_batch, self.delay_s = max_batch, max_queue_delay_us / 1e6
        self.with_data = with_data  # AccuracyOnly: responses carry the predicted class
        self._pending: deque[tuple[list[int], list[int], float]] = deque()  # (ids, indices, arrival)
        self._count = 0  # samples waiting in _pending
        self._head = 0  # samples of _pending[0] already taken
        self._cv = threading.Condition()
        self._stopping = False
        self._flushed = False  # LoadGen said no more queries are coming soon: do not wait for company
        self._drain_after = float("inf")  # perf_counter after which queued samples are completed unanswered
        self.drained = 0  # samples completed without running the model (time cap hit)
        self.batches = 0
        self.samples = 0
        self.errors: list[BaseException] = []
        # one set of bound batches per worker thread: a binding is never run by two threads at once
        self._bound: list[dict[int, Bound]] = [{} for _ in range(workers)]
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"fnnkit-sut-{i}", daemon=True) for i in range(workers)
        ]

    # ----------------------------------------------------------------- LoadGen callbacks

    def issue(self, ids: list[int], indices: list[int]) -> None:
        """ConstructFastSUT's issue callback: plain lists, no QuerySample objects."""
        arrival = time.perf_counter()
        with self._cv:
            self._pending.append((ids, indices, arrival))
            self._count += len(ids)
            self._cv.notify()

    def flush(self) -> None:
        """LoadGen's end-of-queries hint: a waiting partial batch need not wait any longer."""
        with self._cv:
            self._flushed = True
            self._cv.notify_all()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Bind (and run once) every batch size up to PREBIND_UP_TO for every worker, then start the workers."""
        for cache in self._bound:
            for n in range(1, min(self.max_batch, PREBIND_UP_TO) + 1):
                cache[n] = bound = self.predictor.bound(n)
                bound.run()  # a runtime's first run at a shape sizes its buffers: not inside the test
        for t in self._threads:
            t.start()

    def drain_after(self, deadline: float) -> None:
        """After ``deadline`` (perf_counter) answer queued samples without the model, so LoadGen returns."""
        self._drain_after = deadline

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout=30)

    # ----------------------------------------------------------------- workers

    def _take(self) -> tuple[list[int], list[int]] | None:
        """Up to max_batch samples; the oldest waits at most delay_s after its arrival for the rest."""
        with self._cv:
            while not self._count:
                if self._stopping:
                    return None
                self._cv.wait(0.05)
            if self._count < self.max_batch and self.delay_s > 0:
                until = self._pending[0][2] + self.delay_s  # a sample queued behind a busy worker waited already
                while self._count < self.max_batch and not (self._stopping or self._flushed):
                    left = until - time.perf_counter()
                    if left <= 0:
                        break
                    self._cv.wait(left)
            ids: list[int] = []
            indices: list[int] = []
            while self._pending and len(ids) < self.max_batch:
                qids, qidx, _ = self._pending[0]
                end = self._head + self.max_batch - len(ids)
                ids += qids[self._head : end]  # an offline query of 10,000 samples is taken in slices
                indices += qidx[self._head : end]
                if end >= len(qids):
                    self._pending.popleft()
                    self._head = 0
                else:
                    self._head = end
            self._count -= len(ids)
            self._flushed = False
            return ids, indices

    def _work(self, worker: int) -> None:
        import mlperf_loadgen as lg

        set_threads(self.predictor.threads)  # OpenMP's thread count is per thread: this one's, too
        cache = self._bound[worker]
        while (batch := self._take()) is not None:
            ids, indices = batch
            classes = None  # keeps the response bytes alive until LoadGen has copied them
            try:
                classes = self._predict(ids, indices, cache)
            except BaseException as exc:  # a failing backend must not hang LoadGen: answer, record, report
                self.errors.append(exc)
            if classes is None:
                responses = [lg.QuerySampleResponse(i, 0, 0) for i in ids]
            else:
                base = classes.ctypes.data
                responses = [lg.QuerySampleResponse(i, base + CLASS_BYTES * k, CLASS_BYTES) for k, i in enumerate(ids)]
            lg.QuerySamplesComplete(responses)

    def _predict(self, ids: list[int], indices: list[int], cache: dict[int, Bound]) -> np.ndarray | None:
        """Run the model on one batch; the predicted classes when responses carry data, else None."""
        if time.perf_counter() > self._drain_after:
            self.drained += len(ids)
            return None
        n = len(indices)
        bound = cache.get(n)
        if bound is None:
            bound = cache[n] = self.predictor.bound(n)
        self.inputs.take(indices, axis=0, out=bound.host)  # gathered into the bound input: no new array
        logits = bound.run()
        self.batches += 1
        self.samples += n
        if not self.with_data:
            return None
        return np.ascontiguousarray(bound.classes(logits))
