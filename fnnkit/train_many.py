"""Several variants at once: one single-threaded worker process per core, results saved by the parent.

Why processes: a batch-100 step keeps one core busy with small matmuls; a second thread
inside the step helps little and, spinning, collapses when another program takes a core.
Independent variants, one per process and one thread each, use both cores fully and degrade
only in proportion when a core is taken. Workers are forked, so they share the preprocessed
dataset copy-on-write and start without re-importing torch; each returns its weights and
record, and only the parent writes artifacts (atomically, through fnnkit.store).
The weights do not depend on the number of workers: every variant trains on one thread
from its own seed, in a worker or in-process alike.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import torch

from fnnkit.data import Dataset
from fnnkit.env import usable_cpus
from fnnkit.errors import FnnkitError, WorseModel
from fnnkit.train import Prepared, TrainConfig, TrainRecord, fit, model_card
from fnnkit.variants import VariantSpec

# (variant name, iteration, latest loss, test accuracy or None)
ManyProgressFn = Callable[[str, int, float, "float | None"], None]


class WorkerDied(FnnkitError):
    """A training worker process ended abruptly (killed, out of memory): its variant was not saved."""


_shared: dict = {}  # set in the parent just before the workers fork; read in them


def default_workers(count: int) -> int:
    """One worker per core this process may use, never more than there are variants."""
    return max(1, min(count, usable_cpus()))


def _worker_init() -> None:
    # The parent decides: Ctrl-C goes to it alone, and its terminate() (SIGTERM) must end a worker
    # outright, not raise fnnkit's Interrupted inside the task (the handler inherited through fork).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(1)


def _train_one(spec: VariantSpec, config: TrainConfig) -> tuple[dict, TrainRecord]:
    progress = _shared["queue"]

    def report(iteration: int, loss: float, accuracy: float | None) -> None:
        progress.put((spec.name, iteration, loss, accuracy))

    model, record = fit(spec, _shared["prepared"], config, torch.device("cpu"), report)
    return model.state_dict(), record


def train_and_save_many(
    specs: Sequence[VariantSpec],
    data: Dataset,
    artifacts_root,
    config: TrainConfig = TrainConfig(),
    device: torch.device = torch.device("cpu"),
    on_progress: ManyProgressFn | None = None,
    workers: int | None = None,
    *,
    replace_worse: bool = False,
) -> list[TrainRecord]:
    """Train ``specs`` and save each as it finishes; records come back in ``specs`` order.

    CUDA, one variant, ``workers=1`` or a platform other than Linux train in this process, one after another.
    A run that would replace a model with a much worse one is not saved (``store.refuse_worse``); the
    others still are, then one WorseModel names every variant kept, unless ``replace_worse``.
    """
    from fnnkit.store import ensure_writable_dir, save_trained, variant_dir

    folders = {spec.name: variant_dir(artifacts_root, data.info.name, spec.name) for spec in specs}
    for folder in folders.values():
        ensure_writable_dir(folder)  # fail before minutes of training, not after
    workers = default_workers(len(specs)) if workers is None else max(1, min(workers, len(specs)))
    prepared = Prepared.of(data, device)
    records: dict[str, TrainRecord] = {}
    kept: list[str] = []  # refusals: one line per variant whose previous model was kept

    def save(state_dict: dict, record: TrainRecord) -> None:
        try:
            save_trained(folders[record.spec.name], state_dict, model_card(record), replace_worse=replace_worse)
        except WorseModel as exc:
            kept.append(str(exc))
            return
        records[record.spec.name] = record

    def results() -> list[TrainRecord]:
        if kept:
            saved = ", ".join(s.name for s in specs if s.name in records)
            raise WorseModel("\n".join(kept) + (f"\n(saved: {saved})" if saved else ""))
        return [records[spec.name] for spec in specs]

    if device.type != "cpu" or workers == 1 or sys.platform != "linux":  # fork is safe with torch on Linux only
        for spec in specs:
            report = None if on_progress is None else (lambda i, loss, acc, n=spec.name: on_progress(n, i, loss, acc))
            model, record = fit(spec, prepared, config, device, report)
            save(model.state_dict(), record)
        return results()

    context = multiprocessing.get_context("fork")
    progress = context.SimpleQueue()
    _shared.update(prepared=prepared, queue=progress)
    order = sorted(specs, key=lambda s: -s.flops_per_sample)  # longest first: better packing
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init)
    try:
        pending = {pool.submit(_train_one, spec, config) for spec in order}
        while pending:
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            _drain(progress, on_progress)
            for future in done:
                try:
                    save(*future.result())
                except BrokenProcessPool:
                    missing = ", ".join(s.name for s in specs if s.name not in records)
                    raise WorkerDied(
                        f"a training worker process died (killed, or out of memory); variants {missing} "
                        "were not saved (finished ones were, atomically); rerun them, or use fewer at a time"
                    ) from None
        _drain(progress, on_progress)
    except BaseException:
        _stop(pool)  # an interrupted or failed run must not leave workers training
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        _shared.clear()
    return results()


def _stop(pool: ProcessPoolExecutor) -> None:
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)


def _drain(progress, on_progress: ManyProgressFn | None) -> None:
    while not progress.empty():
        try:
            item = progress.get()
        except (EOFError, OSError, queue_module.Empty):
            return
        if on_progress is not None:
            on_progress(*item)
