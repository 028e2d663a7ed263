"""No silent CUDA fallback: ONNX Runtime asked for CUDA on a machine without a usable CUDA: refused or listed
as not measured, never a row labelled cuda.

Two layers are exercised: the registry refuses up front when torch sees no GPU, and, below
it, ``ort_session`` refuses when onnxruntime silently falls back from the CUDA provider to the
CPU (the onnxruntime-gpu wheel lists CUDAExecutionProvider even where libcuda is missing).
"""

from __future__ import annotations

import pytest
import torch
from clitools import fnnkit_in_process

from fnnkit.backends import get_backend, ort_session, read_exported
from fnnkit.bench import BenchConfig, InProcess, plan, run_bench
from fnnkit.errors import BackendUnavailable

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a usable CUDA GPU")


def test_registry_refuses_cuda_onnxruntime(variant):
    backend = get_backend("onnxruntime")
    ok, reason = backend.available("cuda")
    assert not ok and "no CUDA GPU here" in reason
    with pytest.raises(BackendUnavailable, match="cannot run on cuda"):
        backend.load(variant, "cuda", 1)


def test_provider_fallback_to_cpu_is_refused_not_relabelled(variant):
    """Below the registry: a session that asked for CUDA and got the CPU is refused, whatever the cause."""

    data, path = read_exported(variant, "onnx", "cpu")
    with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider") as info:
        ort_session(data, path, ("CUDAExecutionProvider", "CPUExecutionProvider"), {}, 1)
    assert "refusing to report" in str(info.value) or "could not open" in str(info.value)


def test_bench_on_cuda_reports_no_cuda_rows(variant):
    """A whole in-process run for cuda: nothing measured; the plan skips every pair with its reason, and with
    nothing left to run the run stops with every pair's reason in its one message."""

    config = BenchConfig(variants=("C",), backends=("onnxruntime", "onnxruntime-trt", "eager"), devices=("cuda",),
                         batch_sizes=(1,), artifacts=str(variant.parent.parent), min_time_s=0.02,
                         accuracy=False)  # fmt: skip
    targets, skipped = plan(config.artifacts, config.variants, None, config.backends, config.devices)
    assert targets == [] and {(s.backend, s.device) for s in skipped} == {(b, "cuda") for b in config.backends}
    assert all("CUDA" in s.reason and not s.missing for s in skipped)
    with pytest.raises(BackendUnavailable, match="nothing to run here") as info:
        run_bench(config, launcher=InProcess())
    assert all(f"{b} on cuda" in str(info.value) for b in config.backends)


def test_cli_refuses_device_cuda(variant, capsys, monkeypatch):
    code, text = fnnkit_in_process(capsys, monkeypatch, "bench", "--device", "cuda", "--backend", "onnxruntime",
                            "--artifacts", str(variant.parent.parent))  # fmt: skip
    assert code == 2 and "no CUDA GPU is usable here" in text and "Traceback" not in text
