"""The AOTInductor package (``.pt2``) as a file: its metadata and the CPU it needs, read without loading code.

Torch-free: the ``aoti`` backend and ``fnnkit verify`` read the zip's metadata here, before any
library in it is mapped, and refuse a package whose instruction set this CPU lacks.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from fnnkit.capabilities import ISA_FLAGS, cpu_capabilities
from fnnkit.errors import ArtifactError


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
