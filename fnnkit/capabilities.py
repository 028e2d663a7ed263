"""What this CPU can execute natively: instruction sets and reduced-precision arithmetic.

Precision and instruction set are properties of the hardware, not of the device type: a CPU
with AVX512-BF16 or AMX runs bfloat16 matmuls faster than float32, and a compiled artifact
built with AVX-512 dies with SIGILL on a CPU without it. Everything here is read from the
kernel's ``/proc/cpuinfo`` flags, never guessed from "cpu vs cuda"; torch's own dispatch probe
(``torch.backends.cpu.get_cpu_capability()``) is reported beside them and stands in for them only
where ``/proc/cpuinfo`` cannot be read. Reading the flags imports no torch: OpenVINO's bf16 check
runs in processes without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")

# Instruction-set targets for compiled artifacts, from most portable to most specific. Each
# names the cpuinfo flags a CPU must have to run code built for it, the gcc -march level
# and the vector width inductor vectorises for. "native" is resolved to one of these.
ISA_FLAGS: dict[str, tuple[str, ...]] = {
    "avx2": ("avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "movbe"),  # x86-64-v3
    "avx512": ("avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "movbe", "avx512f", "avx512bw", "avx512cd",
               "avx512dq", "avx512vl"),  # x86-64-v4
}  # fmt: skip
ISA_MARCH = {"avx2": "x86-64-v3", "avx512": "x86-64-v4"}
ISA_SIMDLEN = {"avx2": 256, "avx512": 512}
ISA_CHOICES = ("avx2", "avx512", "native")
DEFAULT_ISA = "avx2"  # every x86-64 CPU sold since ~2015 (Intel Haswell, AMD Excavator/Zen) runs it

# Flags gcc's -march=native may turn into instructions: what a "native" build records and needs.
SIMD_FLAG = re.compile(r"^(sse\w*|ssse3|avx\w*|amx\w*|fma|f16c|bmi\d|movbe|popcnt|lzcnt|abm|adx|aes|pclmulqdq|sha_ni"
                       r"|gfni|vaes|vpclmulqdq)$")  # fmt: skip

# Native reduced precision on the CPU: the flags that make a bf16 / int8 matmul cheaper than fp32.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
FP16_FLAGS = ("amx_fp16", "avx512_fp16")
INT8_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")


@dataclass(frozen=True)
class CpuCapabilities:
    flags: frozenset[str]
    torch_capability: str | None = None  # torch's own dispatch level ("AVX512", "AVX2", ...); None: asked when shown

    @property
    def bf16(self) -> str | None:
        """The flag that makes bf16 native here (AMX first), or None."""
        return next((f for f in BF16_FLAGS if f in self.flags), None)

    @property
    def fp16(self) -> str | None:
        return next((f for f in FP16_FLAGS if f in self.flags), None)

    def native(self, precision: str) -> str | None:
        """The flag that makes ``precision`` ("bf16" | "fp16" | "int8") native on this CPU, or None."""
        return {"bf16": self.bf16, "fp16": self.fp16, "int8": self.int8}.get(precision)

    @property
    def int8(self) -> str | None:
        return next((f for f in INT8_FLAGS if f in self.flags), None)

    def supports_isa(self, isa: str) -> bool:
        """Whether code compiled for ``isa`` runs here (``native`` was resolved at build time)."""
        needed = ISA_FLAGS.get(isa.lower())
        return needed is not None and all(f in self.flags for f in needed)

    def missing(self, needed: list[str] | tuple[str, ...]) -> list[str]:
        """Which of ``needed`` (cpuinfo flags an artifact was built for) this CPU lacks."""
        return [f for f in needed if f not in self.flags]

    def simd_flags(self) -> tuple[str, ...]:
        """This CPU's vector / bit-manipulation flags: what ``-march=native`` code may use."""
        return tuple(sorted(f for f in self.flags if SIMD_FLAG.match(f)))

    def best_isa(self) -> str:
        """The widest target this CPU runs: what ``--isa native`` compiles for and records."""
        for isa in reversed(tuple(ISA_FLAGS)):
            if self.supports_isa(isa):
                return isa
        return "none"

    def describe(self) -> str:
        native = [f"{p} ({self.native(p)})" for p in ("bf16", "fp16", "int8") if self.native(p)]
        return (
            f"isa {self.best_isa()} (torch dispatch {self.torch_capability or torch_dispatch()}); "
            f"native reduced precision: {', '.join(native) or 'none'}"
        )


def parse_cpuinfo_flags(text: str) -> frozenset[str]:
    """The flags of the first processor in a /proc/cpuinfo text (all cores of one host match)."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@cache
def torch_dispatch() -> str:
    """torch's own CPU dispatch level ("AVX512", "AVX2", "DEFAULT", ...); imports torch."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


@cache
def cpu_capabilities() -> CpuCapabilities:
    """This machine's capabilities, read once per process (torch is imported only where /proc/cpuinfo is not read)."""
    try:
        flags = parse_cpuinfo_flags(CPUINFO.read_text())
    except OSError:  # not Linux: fall back on torch's probe alone
        flags = frozenset()
    if flags:
        return CpuCapabilities(flags)
    probe = torch_dispatch()  # map torch's dispatch level onto the flag sets above, so checks still mean something
    level = {"AVX512": "avx512", "AVX2": "avx2"}.get(probe.split("_")[0].upper())
    return CpuCapabilities(frozenset(ISA_FLAGS.get(level, ())), probe)


def check_isa(isa: str) -> str:
    """A valid ``--isa`` this CPU can run (the export proves each file by running it here)."""
    from fnnkit.errors import ConfigError, unknown_choice

    isa = isa.strip().lower()
    if isa not in ISA_CHOICES:
        raise unknown_choice("isa", isa, ISA_CHOICES)
    caps = cpu_capabilities()
    if isa != "native" and not caps.supports_isa(isa):
        raise ConfigError(
            f"--isa {isa} needs {', '.join(caps.missing(ISA_FLAGS[isa]))}, which this CPU lacks, so the package "
            "could not be proven here; export on a machine that has them, or use --isa avx2"
        )
    return isa


def buildable_isa(isa: str) -> str:
    """The target a compile will really use: inductor without ``cpp.march`` (older torch) always builds native.

    Recorded as such in export.json and the package, so a loader checks the truth, never the request.
    """
    import torch._inductor.config as inductor_config

    return isa if isa == "native" or hasattr(inductor_config.cpp, "march") else "native"
