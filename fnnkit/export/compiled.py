"""Compiled (``model.pt2``): torch.export with a dynamic batch, compiled ahead of time by AOTInductor.

The package holds a shared library with the weights inside, built for one device; a process
loads it with ``torch._inductor.aoti_load_package`` and needs neither Python model code nor
a compiler. Compiling costs ~15-30 s per model cold; inductor's on-disk cache
(``TORCHINDUCTOR_CACHE_DIR``, default ``/tmp/torchinductor_<user>``) brings a repeat to a
few seconds, and fnnkit skips the compile entirely while the weights are unchanged.
"""

from __future__ import annotations

import copy
import io
import logging
from pathlib import Path
from typing import Any

import torch

from fnnkit.errors import ArtifactError, BackendUnavailable, ExportError
from fnnkit.export.base import EXAMPLE_BATCH, ExportContext, Runner, as_float_cpu, quiet_torch_internals
from fnnkit.variants import INPUT_DIM


def write(ctx: ExportContext, temp: Path) -> None:
    import torch._inductor

    device = torch.device(ctx.device)
    model = copy.deepcopy(ctx.model).to(device).eval()
    example = torch.rand(EXAMPLE_BATCH, INPUT_DIM, device=device)
    batch = torch.export.Dim("batch", min=1)
    buffer = io.BytesIO()  # the compiler wants a name ending in .pt2; the temp file's does not
    # On a machine without CUDA, cpp_extension warns "No CUDA runtime is found" even for a CPU build.
    cpp_log = logging.getLogger("torch.utils.cpp_extension")
    level = cpp_log.level
    cpp_log.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), quiet_torch_internals():
            program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        with quiet_torch_internals():
            torch._inductor.aoti_compile_and_package(
                program, package_path=buffer, inductor_configs={"aot_inductor.metadata": dict(ctx.metadata)}
            )
    except Exception as exc:  # inductor raises compiler, codegen and export errors of many types
        raise ExportError(
            f"AOTInductor could not compile variant {ctx.metadata['variant']} for {ctx.device}: "
            f"{type(exc).__name__}: {str(exc)[:2000]} (it needs a working C++ compiler, and nvcc for cuda)"
        ) from exc
    finally:
        cpp_log.setLevel(level)
    temp.write_bytes(buffer.getvalue())


def open_pt2(data: bytes, path: Path, device: str) -> tuple[Any, Runner]:
    import torch._inductor

    if device == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable(f"{path} is compiled for cuda, but torch.cuda.is_available() is False here")
    try:
        compiled = torch._inductor.aoti_load_package(io.BytesIO(data))
    except Exception as exc:  # the C++ loader raises RuntimeError; a damaged zip raises others
        raise ArtifactError(f"{path} is not a loadable AOTInductor package ({exc}); re-export it") from None
    built_for = compiled.get_metadata().get("AOTI_DEVICE_KEY", "?")
    if built_for != device:
        raise ArtifactError(f"{path} was compiled for {built_for}, not {device}; export it with --device {device}")

    @torch.inference_mode()
    def run(x: torch.Tensor) -> torch.Tensor:
        try:
            return as_float_cpu(compiled(x.to(device)))
        except RuntimeError as exc:  # the AOTInductor runtime's errors; Ctrl-C is not a RuntimeError
            raise ArtifactError(f"{path} failed while running: {str(exc)[:300]}; re-export it") from None

    return compiled, run
