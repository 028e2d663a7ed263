"""Measure one (variant, backend, device) at every batch size: setup, latency, accuracy, memory.

A launcher (``launch.InProcess`` / ``launch.WorkerProcess``) calls ``measure(job)``. It knows
nothing about particular backends: the registry loads a Predictor, and everything here
goes through the Predictor interface. The timed call is ``stats.time_calls``.

Nothing here imports torch: the test set is read as numpy (``fnnkit.data.load_test_arrays``), and
the logits every backend is held to come from the trained weights' forward pass in numpy
(``fnnkit.numpy_forward``, equal to eager PyTorch's within 1e-5), for every backend alike. A worker
measuring ONNX Runtime or OpenVINO on the CPU therefore runs without torch; a torch backend imports
it itself, and a CUDA row imports it for the device's memory figures.
"""

from __future__ import annotations

import os
import resource
import time

import numpy as np

from fnnkit.backends import Backend, Predictor, get_backend
from fnnkit.backends.onnx_runtime import set_spinning, spinning
from fnnkit.bench.job import Job, Outcome
from fnnkit.bench.results import BenchRow, Latency, Memory, Parity, Setup, Trust
from fnnkit.bench.stats import TIMERS, CpuLoad, LatencyStats, time_calls
from fnnkit.data import load_test_arrays
from fnnkit.errors import BackendUnavailable
from fnnkit.export.parity import measure as parity_of
from fnnkit.numpy_forward import forward
from fnnkit.store import Artifact
from fnnkit.variants import VariantSpec


def hold_freed_memory() -> str:
    """Keep freed blocks inside the process (glibc): no page faults per call for per-call tensors.

    Eager-style backends allocate fresh multi-MB outputs each call; glibc's adaptive
    thresholds then sometimes return them to the OS and fault them back in on every call.
    Which happens depends on the process's history: the same eager row measured 5.3 ms in one
    process and 7.0 ms (4x the page faults) in the next. Fixed thresholds make every process
    behave like the fast one, as ONNX Runtime's arena and PyTorch's CUDA caching allocator do.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return "default allocator (mallopt unavailable)"
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    ok = mallopt(m_mmap_threshold, 32 * 2**20) and mallopt(m_trim_threshold, 2**30)
    return "glibc mallopt: mmap threshold 32 MiB, trim threshold 1 GiB" if ok else "default allocator (mallopt refused)"


def measure(job: Job) -> Outcome:
    """Run the job; a backend that turns out not to run here (at load) is an 'unavailable' outcome.

    FnnkitErrors (a damaged artifact, a missing dataset) propagate: the launcher turns them into
    an 'error' outcome. The backend is looked up once, here.
    """
    hold_freed_memory()
    set_spinning(job.wait_policy == "spin")  # ONNX Runtime's sessions opened by this job; OpenMP's came from the env
    backend = get_backend(job.backend)
    try:
        return Outcome(status="ok", rows=_measure(job, backend))
    except BackendUnavailable as exc:
        return Outcome(status="unavailable", message=str(exc))


def _measure(job: Job, backend: Backend) -> list[BenchRow]:
    """Time every batch size, then check parity once; each row is built once, when all of it is known.

    The trained weights are read (sha256, vetted) before anything is timed, so a damaged model stops
    the job at once; their forward pass runs after the timing, so its threads never share the timed calls.
    """
    artifact = Artifact.at(job.variant_dir)
    weights, spec = artifact.weights("numpy"), artifact.spec
    inputs, labels = load_test_arrays(artifact.card_json, job.data_dir)
    _reset_device_memory(job.device)

    timed: list[tuple[dict, float, str]] = []  # (a row's measured fields, rss added by its Predictor, wait)
    predictor: Predictor | None = None
    for threads, sizes in _by_threads(job.batch_threads):
        rss_before = _rss_mb()
        started = time.perf_counter()
        predictor = backend.load(job.variant_dir, job.device, threads)
        load_s = time.perf_counter() - started
        group = [_time_batch(predictor, backend, job, spec, inputs, batch, load_s) for batch in sizes]
        added, waited = round(_rss_mb() - rss_before, 1), wait_used(backend)
        timed += [(fields, added, waited) for fields in group]

    parity = None
    if job.accuracy and predictor is not None:
        p = parity_of(predictor, inputs, labels, forward(weights, spec, inputs), backend.tolerance)
        parity = Parity(
            accuracy=p.accuracy, eager_accuracy=p.eager_accuracy, max_abs_diff=p.max_abs_diff,
            agreement=p.agreement, agrees=p.passed,
        )  # fmt: skip
    peak_rss = peak_rss_mb()
    peak_device = _peak_device_mb(job.device)
    return [
        BenchRow(
            **fields,
            wait_policy=waited,
            parity=parity,
            memory=Memory(peak_rss_mb=peak_rss, rss_added_mb=added, peak_device_mb=peak_device),
        )  # fmt: skip
        for fields, added, waited in timed
    ]


def wait_used(backend: Backend) -> str:
    """How this backend's idle threads really waited in this process: what the row records."""
    if backend.wait_switch == "onnxruntime":
        return "spin" if spinning() else "passive"
    if backend.wait_switch == "omp":  # the environment this process started with is what OpenMP read
        omp = os.environ.get("OMP_WAIT_POLICY", "").upper()
        return {"ACTIVE": "spin", "PASSIVE": "passive"}.get(omp, "OpenMP default")
    return "runtime default"


def _by_threads(batch_threads: tuple[tuple[int, int], ...]) -> list[tuple[int, list[int]]]:
    groups: dict[int, list[int]] = {}
    for batch, threads in batch_threads:
        groups.setdefault(threads, []).append(batch)
    return list(groups.items())


def batch_of(inputs: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` real test images (repeated when the test set is smaller) as a new C-contiguous float32 array
    [batch, 784]: realistic values, fixed. ``inputs`` is the preprocessed test set (an array or a CPU tensor)."""
    inputs = np.asarray(inputs, dtype=np.float32)
    return inputs[np.arange(batch) % inputs.shape[0]]


def _time_batch(
    predictor: Predictor, backend: Backend, job: Job, spec: VariantSpec, inputs: np.ndarray, batch: int, load_s: float
) -> dict:
    """First call, warm-up, then the timed calls (``stats.time_calls``) for one batch size: a row's measured part."""
    x = batch_of(inputs, batch)
    prepared = predictor.prepare(x)  # made once, on the device, in the backend's format

    started = time.perf_counter()
    predictor(prepared)
    predictor.synchronize()
    first_call_ms = (time.perf_counter() - started) * 1e3

    warm_until = time.perf_counter() + job.warmup_s
    rounds = 0
    while rounds < job.warmup_rounds or time.perf_counter() < warm_until:
        predictor(prepared)
        rounds += 1
    predictor.synchronize()

    timer = TIMERS[job.device]()
    compiled_before = predictor.compilations
    with CpuLoad() as load, predictor.steady():
        samples, stable, seconds = time_calls(
            lambda: predictor(prepared),
            timer,
            min_time_s=job.min_time_s,
            max_time_s=job.max_time_s,
            stability=job.stability,
        )
    stats = LatencyStats.from_ns(samples, stable, seconds)
    e2e = None
    if job.device != "cpu":  # on a GPU the host<->device copies are a real part of a request
        e2e_samples, _, _ = time_calls(
            lambda: predictor.predict(x), timer, min_time_s=job.min_time_s / 2, max_time_s=job.min_time_s,
            stability=job.stability,
        )  # fmt: skip
        e2e = LatencyStats.from_ns(e2e_samples).p50_us

    throughput = batch / (stats.p50_us / 1e6)
    busy = round(load.others_cores, 3)
    return dict(
        variant=spec.name,
        backend=predictor.backend,
        device=predictor.device,
        precision=backend.precision,
        batch_size=batch,
        threads=predictor.threads,
        throughput=throughput,
        gflops=throughput * spec.flops_per_sample / 1e9,
        latency=Latency(
            p50_us=stats.p50_us,
            p90_us=stats.p90_us,
            p99_us=stats.p99_us,
            mean_us=stats.mean_us,
            min_us=stats.min_us,
            spread=stats.spread,
            samples=stats.samples,
            seconds=round(stats.seconds, 3),
            distribution_us=stats.distribution_us,
            end_to_end_p50_us=e2e,
        ),  # fmt: skip
        trust=Trust(
            stable=stats.stable,
            wide=stats.spread > job.spread_limit,
            busy_cores=busy,
            contended=busy > job.contention_limit,
        ),  # fmt: skip
        setup=Setup(
            load_s=round(load_s, 4),
            first_call_ms=round(first_call_ms, 3),
            recompiles=predictor.compilations - compiled_before,
        ),  # fmt: skip
    )


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB, its own: Linux carries ``ru_maxrss`` across exec, so a worker
    started by a 1 GB ``fnnkit bench`` reported 1,060 MB whatever it ran (measured, eager and ONNX Runtime
    alike). The high-water mark of the process's own memory map (``VmHWM``) starts at exec."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # kB
    except (OSError, ValueError, IndexError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _reset_device_memory(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def _peak_device_mb(device: str) -> float | None:
    """Peak memory torch allocated on the GPU, or the device's used memory when a non-torch runtime ran."""
    if device != "cuda":
        return None
    import torch

    allocated = torch.cuda.max_memory_allocated()
    if allocated:
        return round(allocated / 2**20, 1)
    free, total = torch.cuda.mem_get_info()  # ONNX Runtime allocates outside torch's accounting
    return round((total - free) / 2**20, 1)
