"""The one ONNX Runtime session builder: every ``onnxruntime*`` backend opens here, so export parity,
bench, serve and predict run sessions made with the same options.

One builder means one set of session options and one rule for a provider that does not start:
ONNX Runtime silently falls back to the next provider (ultimately the CPU), and a number
measured that way would be reported under a GPU name. Imports neither torch nor (until a
session is made) onnxruntime.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from fnnkit.errors import ArtifactError, BackendUnavailable

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
# TF32 would cost fp32 files their 1e-4 parity; fp16 files are unaffected. ORT reads option values as strings
CUDA_OPTIONS: dict[str, dict[str, str]] = {CUDA: {"use_tf32": "0"}}
PROVIDERS: dict[str, tuple[str, ...]] = {"cpu": (CPU,), "cuda": (CUDA, CPU)}


_spinning = {"on": False}  # process-wide, like the thread count; set by a benchmark job (fnnkit.bench.waiting)


def set_spinning(on: bool) -> None:
    """Whether sessions opened from now on keep idle intra-op threads spinning (fast on an idle machine)."""
    _spinning["on"] = bool(on)


def spinning() -> bool:
    return _spinning["on"]


class SessionRefused(BackendUnavailable):
    """ONNX Runtime would not open the file (a bad graph, an opset it lacks, a provider that failed to build)."""


def provider_missing(provider: str) -> str | None:
    """Why ``provider`` cannot run in this onnxruntime build, or None when it is compiled in."""
    import onnxruntime as ort

    found = ort.get_available_providers()
    if provider in found:
        return None
    hint = "; install onnxruntime-gpu or use --device cpu" if provider == CUDA else ""
    return f"onnxruntime {ort.__version__} here has no {provider} (it has: {', '.join(found)}){hint}"


def ort_session(
    data: bytes,
    path: Path,
    providers: tuple[str, ...],
    provider_options: dict[str, dict[str, str]] | None = None,
    threads: int | None = None,
) -> Any:
    """A session on sha256-verified ``data`` with fnnkit's fixed options; the first provider must start.

    ``threads``: the intra-op pool size (the same number torch gets); None leaves ONNX Runtime's
    default. Raises SessionRefused when ONNX Runtime rejects the file, BackendUnavailable when
    the first provider is absent or fell back.
    """
    import onnxruntime as ort

    missing = provider_missing(providers[0])
    if missing:
        raise BackendUnavailable(f"{missing} (opening {path})")
    if providers[0] != CPU and hasattr(ort, "preload_dlls"):
        with contextlib.suppress(Exception):  # loads CUDA/cuDNN from pip wheels; a failure shows as a fallback
            ort.preload_dlls()
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # fuses Gemm + activation
    spin = "1" if _spinning["on"] else "0"  # off by default: idle threads sleep rather than steal shared cores
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    options.log_severity_level = 3  # errors only: CPU fallbacks for int8 nodes on CUDA are expected
    chosen_options = {**CUDA_OPTIONS, **(provider_options or {})}
    chosen = [(p, chosen_options[p]) if p in chosen_options else p for p in providers]
    try:
        session = ort.InferenceSession(data, options, providers=chosen)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/EP types
        raise SessionRefused(
            f"onnxruntime {ort.__version__} could not open {path} with {providers[0]}: {exc}"
        ) from None
    started = session.get_providers()
    if started[0] != providers[0]:
        raise BackendUnavailable(
            f"onnxruntime could not start {providers[0]} for {path} and fell back to {started[0]}; refusing to "
            "report those numbers under this backend's name (check the CUDA/cuDNN/TensorRT libraries it needs)"
        )
    return session


def run_failed(path: Path, exc: Exception) -> ArtifactError:
    """One line naming the file, for an error ONNX Runtime raised while running (not opening) a session."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ArtifactError(f"onnxruntime failed running {path}: {first[:300]}; re-export it with `fnnkit export --force`")
