"""The matmul ceiling: GFLOP/s of a large matmul per device, thread count and precision.

Measured once per run before any backend, so each row can say what share of this machine's
best it reaches.
"""

from __future__ import annotations

import time

import torch

from fnnkit.backends import get_backend, set_threads
from fnnkit.bench.config import BenchConfig
from fnnkit.bench.results import Ceiling

CEILING_TIME_S = 1.0  # best of ~10-25 large matmuls: one slow moment must not lower the ceiling


def measure_ceilings(config: BenchConfig) -> list[Ceiling]:
    """One matmul ceiling per device and thread count the run uses, measured before any backend."""
    ceilings = []
    for device in config.devices:
        if device == "cuda" and not torch.cuda.is_available():
            continue
        precisions = [p for p in ceiling_precisions(config.backends) if native_here(p, device)]
        for threads in sorted({config.threads_for(b) for b in config.batch_sizes}):
            ceilings += precision_ceilings(threads, device, precisions, CEILING_TIME_S)
    return ceilings


def native_here(precision: str, device: str) -> bool:
    """Whether a ``precision`` ceiling means anything on ``device``: on a CPU without the native flag, the
    reduced-precision backends are not offered, and an emulated 2048³ fp16 matmul takes seconds per call
    (fp16 without avx512_fp16: 35x fp32, ~7 s per 2048³ call: about a minute per ceiling, for no row)."""
    if device != "cpu" or precision == "fp32":
        return True
    from fnnkit.capabilities import cpu_capabilities

    return cpu_capabilities().native(precision) is not None


CEILING_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.int8}


def matmul_ceiling(
    threads: int, size: int = 2048, min_time_s: float = 0.5, device: str = "cpu", precision: str = "fp32"
) -> Ceiling:
    """GFLOP/s of a large matmul in ``precision`` at ``threads``: the most this machine does with these cores.

    int8 is ``torch._int_mm`` (int8 x int8 -> int32, the kernel VNNI/AMX accelerate). Reported
    as the best of the repetitions (a ceiling), with the median alongside.
    """
    set_threads(threads)
    dtype = CEILING_DTYPES[precision]
    if dtype == torch.int8:
        a = torch.randint(-128, 128, (size, size), dtype=dtype, device=device)
        b = torch.randint(-128, 128, (size, size), dtype=dtype, device=device)
        mm = torch._int_mm
    else:
        a = torch.rand(size, size, device=device, dtype=dtype)
        b = torch.rand(size, size, device=device, dtype=dtype)
        mm = torch.mm
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(2):
        mm(a, b)
    sync()
    durations = []
    deadline = time.perf_counter() + min_time_s
    while len(durations) < 5 or time.perf_counter() < deadline:
        started = time.perf_counter_ns()
        mm(a, b)
        sync()
        durations.append(time.perf_counter_ns() - started)
    flop = 2 * size**3
    rates = sorted(flop / d for d in durations)  # FLOP per ns = GFLOP/s
    median = round(rates[len(rates) // 2], 2)
    return Ceiling(device, threads, size, round(rates[-1], 2), median, len(rates), precision)


def ceiling_precisions(backends: tuple[str, ...] | list[str]) -> list[str]:
    """fp32 plus every other precision the chosen backends compute in: one ceiling each."""
    found = {get_backend(name).precision for name in backends} & set(CEILING_DTYPES)
    return ["fp32", *sorted(found - {"fp32"})]


def precision_ceilings(threads: int, device: str, precisions: list[str], min_time_s: float) -> list[Ceiling]:
    """One ceiling per precision; one this torch has no kernel for is left out (its rows show no share)."""
    found = []
    for precision in precisions:
        try:
            found.append(matmul_ceiling(threads, device=device, min_time_s=min_time_s, precision=precision))
        except (RuntimeError, NotImplementedError):
            if precision == "fp32":
                raise
    return found
