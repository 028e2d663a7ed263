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
cpuinfo flags the target needs inside the package, and refuses to load a package whose flags
the running CPU lacks, reading them from the zip before the library is mapped.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import torch

from fnnkit.capabilities import ISA_FLAGS, ISA_MARCH, ISA_SIMDLEN, cpu_capabilities
from fnnkit.errors import ArtifactError, BackendUnavailable, ExportError
from fnnkit.export.base import EXAMPLE_BATCH, ExportContext, Runner, as_float_cpu, quiet_logger, quiet_torch_internals
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


def package_metadata(data: bytes, path: Path) -> dict[str, str]:
    """The metadata AOTInductor stores beside its library, read from the zip without loading any code.

    Empty for a package without that file (an older torch's): its loader then has nothing to check.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.endswith("wrapper_metadata.json")]
            found = json.loads(archive.read(names[0])) if names else {}
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ArtifactError(f"{path} is not an AOTInductor package ({type(exc).__name__}); re-export it") from None
    if not isinstance(found, dict):
        raise ArtifactError(f"{path}: its package metadata is not a JSON object; re-export it")
    return {str(k): str(v) for k, v in found.items()}


def required_flags(metadata: dict[str, str]) -> list[str]:
    """The cpuinfo flags a CPU package needs: fnnkit's record, else torch's own ``AOTI_CPU_ISA``."""
    if "fnnkit_isa_flags" in metadata:
        return metadata["fnnkit_isa_flags"].split()
    torch_isa = metadata.get("AOTI_CPU_ISA", "").lower().split()  # e.g. "AVX512 AVX512_VNNI AMX_TILE"
    needed = []
    for name in torch_isa:
        needed += ISA_FLAGS.get(name, (name,))
    return list(dict.fromkeys(needed))


def check_cpu_runs(metadata: dict[str, str], path: Path) -> None:
    """Refuse, in one line, a CPU package built for instructions this CPU lacks (instead of a SIGILL)."""
    if metadata.get("AOTI_DEVICE_KEY", "cpu") != "cpu":
        return
    missing = cpu_capabilities().missing(required_flags(metadata))
    if missing:
        target = metadata.get("fnnkit_isa") or metadata.get("AOTI_CPU_ISA", "?")
        raise ArtifactError(
            f"{path} was compiled for isa {target}, and this CPU lacks {', '.join(missing)}; running it would die with "
            "an illegal instruction. Re-export it on or for this machine: fnnkit export --format compiled --isa avx2"
        )


def open_pt2(data: bytes, path: Path, device: str) -> tuple[Any, Runner]:
    import torch._inductor

    if device == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable(f"{path} is compiled for cuda, but torch.cuda.is_available() is False here")
    check_cpu_runs(package_metadata(data, path), path)
    # torch warns when the package's ISA differs from this CPU's best; check_cpu_runs has decided that already
    try:
        with quiet_logger("torch.export.pt2_archive._package"):
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
