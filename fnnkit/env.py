"""Facts about where code runs: device choice, versions, CPU and GPU names.

Recorded in every artifact and benchmark result, so a number always says where it came from.
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from pathlib import Path

from fnnkit.errors import ConfigError, unknown_choice
from fnnkit.registry import DEVICE_CHOICES
from fnnkit.spawn import run_isolated

MAX_THREADS = 1024  # above every machine fnnkit targets; --threads 100000 made torch segfault
MAX_BATCH = 1 << 20  # a million 784-float rows is 3 GiB of input: larger is a typo, not a benchmark
MIN_TORCH = (2, 6)  # fixed a torch.load weights_only bypass; suite tested on 2.6.0, 2.11.0, 2.14.1


def parse_version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def installed_torch_version() -> str | None:
    """The version of the torch the import system would find, without importing torch or importlib.metadata.

    Reads the first ``torch-<version>.dist-info`` folder on ``sys.path`` (as ``importlib.metadata`` does,
    at a fraction of its 20 ms import); falls back to ``importlib.metadata`` for other layouts. None: no torch
    (a runtime-only install: the ONNX Runtime and OpenVINO paths need none).
    """
    import sys

    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith("torch-") and name.endswith(".dist-info"):
                return name[len("torch-") : -len(".dist-info")]
    import importlib.metadata

    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_torch_floor(version: str | None = None) -> None:
    """Refuse to run on a torch older than MIN_TORCH, before torch is imported; no torch at all is allowed
    (a runtime-only install), and the torch paths then name the install command when they need it."""
    if version is None:
        version = installed_torch_version()
        if version is None:
            return
    if parse_version(version)[:2] < MIN_TORCH:
        floor = ".".join(map(str, MIN_TORCH))
        raise ImportError(
            f"fnnkit needs torch>={floor} (older releases can be made to run code while loading weights); "
            f"this environment has torch {version}. Upgrade it: pip install 'torch>={floor}'"
        )


def resolve_device(name: str):
    """``auto|cpu|cuda`` -> torch.device, once, at the CLI boundary."""
    import torch

    return torch.device(resolve_device_name(name))


def resolve_device_name(name: str) -> str:
    """``auto|cpu|cuda`` -> ``"cpu"`` or ``"cuda"``; imports torch only to ask whether a GPU is there."""
    name = name.lower()
    if name not in DEVICE_CHOICES:
        raise unknown_choice("device", name, DEVICE_CHOICES)
    if name == "cpu":
        return name
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda was asked for, but no CUDA GPU is usable here "
            f"(torch {torch.__version__}, torch.cuda.is_available() is False); use --device cpu or --device auto"
        )
    return name


def package_version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Versions of everything that changes a number fnnkit reports."""
    import torch

    found = {
        "fnnkit": package_version("fnnkit"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "numpy": package_version("numpy"),
    }
    for dist in ("onnx", "onnxruntime-gpu", "onnxruntime", "onnxscript", "safetensors"):
        if version := package_version(dist):
            found[dist] = version
    return found


@cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_info() -> dict[str, str] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    info = {
        "name": props.name,
        "memory_gib": f"{props.total_memory / 2**30:.1f}",
        "capability": f"{props.major}.{props.minor}",
    }
    try:
        out = run_isolated(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], timeout=10)
        info["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        info["driver"] = "unknown"
    return info


def git_state(start: str | os.PathLike = ".") -> tuple[str | None, bool | None]:
    """The commit checked out at ``start``, and whether the files under ``start`` differ from it (one git call;
    (None, None) outside a git checkout): a result measured on changed code must not pass for that commit's."""
    try:
        out = run_isolated(["git", "status", "--porcelain=v2", "--branch", "--", "."], cwd=str(start), timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    if out.returncode != 0:
        return None, None
    lines = out.stdout.splitlines()
    oid = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), None)
    return (oid if oid != "(initial)" else None), any(not line.startswith("#") for line in lines)


def usable_cpus() -> int:
    """The logical CPUs this process may run on: its affinity (taskset, cgroup cpusets), not the machine's
    count. The one answer to "how many cores" for bench threads, serve workers, training workers and tune."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def environment() -> dict:
    """One JSON-ready description of this machine and software stack."""
    import torch

    commit, dirty = git_state(Path(__file__).resolve().parent)
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "gpu": gpu_info(),
        "versions": versions(),
        "git_commit": commit,
        "git_dirty": dirty,  # fnnkit's own files changed since that commit
    }
