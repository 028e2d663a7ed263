"""Compiled (``model.pt2``): torch.export with a dynamic batch, compiled ahead of time by AOTInductor.

The package holds a shared library with the weights inside, built for one device; a process
loads it with ``torch._inductor.aoti_load_package`` and needs neither Python model code nor
a compiler. Compiling costs ~15-30 s per model cold; inductor's on-disk cache
(``TORCHINDUCTOR_CACHE_DIR``, default ``/tmp/torchinductor_<user>``) brings a repeat to a
few seconds, and fnnkit skips the compile entirely while the weights are unchanged.

Instruction set: inductor compiles with ``-march=native`` by default, so a package built on
an AVX-512/AMX machine dies with SIGILL elsewhere. fnnkit compiles for a named target
(``--isa avx2`` by default: x86-64-v3, 256-bit vectors; ``avx512``: x86-64-v4; ``native``),
passed as this compile's ``inductor_configs`` (never a global config change), records the
cpuinfo flags the target needs inside the package; the ``aoti`` backend refuses to load a package
whose flags the running CPU lacks, reading them from the zip before the library is mapped
(``fnnkit.formats.pt2``).
"""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

from fnnkit.capabilities import ISA_FLAGS, ISA_MARCH, ISA_SIMDLEN, cpu_capabilities
from fnnkit.errors import ExportError
from fnnkit.export.base import EXAMPLE_BATCH, ExportContext, quiet_logger, quiet_torch_internals
from fnnkit.variants import INPUT_DIM


def write(ctx: ExportContext, temp: Path) -> None:
    import torch._inductor

    device = torch.device(ctx.device)
    model = copy.deepcopy(ctx.model).to(device).eval()
    example = torch.rand(EXAMPLE_BATCH, INPUT_DIM, device=device)
    batch = torch.export.Dim("batch", min=1)
    buffer = io.BytesIO()  # the compiler wants a name ending in .pt2; the temp file's does not
    # On a machine without CUDA, cpp_extension warns "No CUDA runtime is found" even for a CPU build.
    try:
        with torch.no_grad(), quiet_torch_internals():
            program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        with quiet_torch_internals(), quiet_logger("torch.utils.cpp_extension"):
            configs = isa_configs(ctx.isa) if ctx.device == "cpu" else {}
            metadata = dict(ctx.metadata) | isa_metadata(ctx.isa if ctx.device == "cpu" else "")
            torch._inductor.aoti_compile_and_package(
                program, package_path=buffer, inductor_configs=configs | {"aot_inductor.metadata": metadata}
            )
    except Exception as exc:  # inductor raises compiler, codegen and export errors of many types
        raise ExportError(
            f"AOTInductor could not compile variant {ctx.metadata['variant']} for {ctx.device}: "
            f"{type(exc).__name__}: {str(exc)[:2000]} (it needs a working C++ compiler, and nvcc for cuda)"
        ) from exc
    temp.write_bytes(buffer.getvalue())


def isa_configs(isa: str) -> dict[str, Any]:
    """Inductor options for one compile: gcc's -march and the vector width it generates code for."""
    if isa == "native":
        return {}  # inductor's own default: -march=native, the widest vectors torch dispatches to here
    return {"cpp.march": ISA_MARCH[isa], "cpp.simdlen": ISA_SIMDLEN[isa]}


def isa_metadata(isa: str) -> dict[str, str]:
    """What travels in the package: the target and the cpuinfo flags a CPU needs to run it."""
    if not isa:
        return {}
    flags = cpu_capabilities().simd_flags() if isa == "native" else ISA_FLAGS[isa]
    return {"fnnkit_isa": isa, "fnnkit_isa_flags": " ".join(flags)}
