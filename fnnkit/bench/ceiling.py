"""The matmul ceiling: GFLOP/s of a large matmul per device, thread count and precision.

A ceiling measured in one go is only as good as that moment: on a shared machine one busy
second measured 118 GFLOP/s against a usual 344, and rows then showed "shares" above 100%.
So it is measured in several short repetitions, half before the backends and half after
them; each repetition's best call is its rate, and the ceiling is the median of those rates,
reported with their spread. A row above its ceiling is flagged as a measurement error by the
runner, never shown as a share.

On the CPU in fp32 a repetition's rate is the better of torch's matmul and ONNX Runtime's
(its MLAS kernels, which the ONNX Runtime rows run): on a 2-core AMD EPYC VM torch's 2048³ fp32
matmul measured 219 GFLOP/s while ONNX Runtime ran variant A at batch 8192 at 370, so a
torch-only ceiling was exceeded by every ONNX Runtime and OpenVINO row at batch 1024 and 8192.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from fnnkit.backends import get_backend, set_threads
from fnnkit.bench.config import BenchConfig
from fnnkit.bench.results import Ceiling

REPETITION_S = 0.12  # one short repetition: at least MIN_CALLS matmuls, its best call is its rate
REPETITIONS = 4  # per half: this many before the backends and as many after them
MIN_CALLS = 1  # a slow precision (bf16 emulated, int8 without VNNI) may take seconds a call


def measure_ceilings(config: BenchConfig, rates: dict | None = None, usable: dict | None = None) -> list[Ceiling]:
    """One matmul ceiling per device, thread count and precision the run uses.

    Call it before the backends with ``rates={}``, and again after them with the same dict: the
    second call adds its repetitions to the first's and returns ceilings over both halves.
    ``usable``: (backend, device) -> (runs here, why); a precision only unavailable backends compute
    in is not measured (an emulated fp16 matmul takes minutes on a CPU without it).
    """
    rates = {} if rates is None else rates
    ceilings = []
    for device in config.devices:
        if device == "cuda" and not torch.cuda.is_available():
            continue
        for threads in sorted({config.threads_for(b) for b in config.batch_sizes}):
            running = [b for b in config.backends if usable is None or usable[b, device][0]]
            for precision in ceiling_precisions(running):
                try:
                    found = repetition_rates(threads, device=device, precision=precision)
                except (RuntimeError, NotImplementedError):
                    if precision == "fp32":
                        raise
                    continue  # no kernel for it in this torch: its rows show no share
                key = (device, threads, precision)
                rates[key] = rates.get(key, []) + found
                ceilings.append(summarize(device, threads, precision, rates[key]))
    return ceilings


def summarize(device: str, threads: int, precision: str, rates: list[float], size: int = 2048) -> Ceiling:
    """The median of the repetitions' rates, with their spread ((max - min) / median)."""
    ordered = sorted(rates)
    median = statistics.median(ordered)
    spread = (ordered[-1] - ordered[0]) / median if median > 0 else 0.0
    return Ceiling(device, threads, size, round(median, 2), round(median, 2), len(ordered), precision, round(spread, 4))


def repetition_rates(
    threads: int, size: int = 2048, device: str = "cpu", precision: str = "fp32", repetitions: int = REPETITIONS
) -> list[float]:
    """GFLOP/s of each of ``repetitions`` short bursts of matmuls: each burst's best call (CPU fp32: the
    better of torch's and ONNX Runtime's burst). The operands are made and warmed once for all bursts:
    at 1 thread a 2048³ fp32 call takes ~0.1 s, so warming each burst again cost a third of the ceiling."""
    set_threads(threads)
    matmul = _warm_matmul(size, device, precision)
    rates = []
    for _ in range(repetitions):
        best = _rates(matmul, size, REPETITION_S)[-1]
        if device == "cpu" and precision == "fp32":
            best = max(best, _ort_burst(threads, size, REPETITION_S))
        rates.append(round(best, 2))
    return rates


_ORT_MATMULS: dict[tuple[int, int], tuple[object, object]] = {}  # (threads, size) -> (session, input): built once


def _ort_burst(threads: int, size: int, min_time_s: float) -> float:
    """Best GFLOP/s of ONNX Runtime's fp32 MatMul (size³) on the CPU for ``min_time_s``; 0.0 without onnxruntime."""
    try:
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return 0.0
    if (threads, size) not in _ORT_MATMULS:
        rng = np.random.default_rng(0)
        weight = numpy_helper.from_array(rng.random((size, size), dtype=np.float32), "b")
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["a", "b"], ["c"])], "ceiling",
            [helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size])],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])], [weight],
        )  # fmt: skip
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8  # opset 17 needs IR 8; every onnxruntime release since 1.12 reads it
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")  # as the fastest row could
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        _ORT_MATMULS[threads, size] = (session, rng.random((size, size), dtype=np.float32))
        session.run(None, {"a": _ORT_MATMULS[threads, size][1]})  # the first call allocates: warm once
    session, a = _ORT_MATMULS[threads, size]
    best_ns = None
    deadline = time.perf_counter() + min_time_s
    while best_ns is None or time.perf_counter() < deadline:
        started = time.perf_counter_ns()
        session.run(None, {"a": a})
        took = time.perf_counter_ns() - started
        best_ns = took if best_ns is None else min(best_ns, took)
    return round(2 * size**3 / best_ns, 2)


CEILING_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.int8}


def matmul_ceiling(
    threads: int, size: int = 2048, min_time_s: float = 0.5, device: str = "cpu", precision: str = "fp32"
) -> Ceiling:
    """GFLOP/s of a large matmul in ``precision`` at ``threads``, in one go: the best call, with the median.

    For a quick look (scripts, tests); a benchmark run uses ``measure_ceilings``' repetitions.
    """
    best, median, calls = _burst(threads, size, min_time_s, device, precision)
    return Ceiling(device, threads, size, best, median, calls, precision)


def _burst(threads: int, size: int, min_time_s: float, device: str, precision: str) -> tuple[float, float, int]:
    """(best, median GFLOP/s, calls) of matmuls for ``min_time_s`` (at least MIN_CALLS)."""
    set_threads(threads)
    rates = _rates(_warm_matmul(size, device, precision), size, min_time_s)
    return round(rates[-1], 2), round(rates[len(rates) // 2], 2), len(rates)


def _warm_matmul(size: int, device: str, precision: str) -> Callable[[], None]:
    """One size³ matmul in ``precision`` as a call that returns when it is done, called twice already.

    int8 is ``torch._int_mm`` (int8 x int8 -> int32, the kernel VNNI/AMX accelerate).
    """
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

    def call() -> None:
        mm(a, b)
        sync()

    for _ in range(2):
        call()
    return call


def _rates(call: Callable[[], None], size: int, min_time_s: float) -> list[float]:
    """GFLOP/s of each call made for ``min_time_s`` (at least MIN_CALLS), slowest first."""
    durations = []
    deadline = time.perf_counter() + min_time_s
    while len(durations) < MIN_CALLS or time.perf_counter() < deadline:
        started = time.perf_counter_ns()
        call()
        durations.append(time.perf_counter_ns() - started)
    return sorted(2 * size**3 / d for d in durations)  # FLOP per ns = GFLOP/s


def ceiling_precisions(backends: tuple[str, ...] | list[str]) -> list[str]:
    """fp32 plus every other precision the chosen backends compute in: one ceiling each."""
    found = {get_backend(name).precision for name in backends} & set(CEILING_DTYPES)
    return ["fp32", *sorted(found - {"fp32"})]
