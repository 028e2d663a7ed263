"""What `fnnkit serve` deploys, as plain values: built by the CLI without importing Ray, read by every worker."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fnnkit.errors import ConfigError

_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]{1,64}){1,4}")  # /fnnkit_mnist_C, /team/digits: no '..', no query


def default_prefix(folder: str | Path) -> str:
    """/fnnkit_<dataset>_<variant>: one route per model, so models and other teams' apps share a cluster."""
    return f"/fnnkit_{Path(folder).parent.name}_{Path(folder).name}"


def check_prefix(prefix: str) -> str:
    """A route prefix as Ray Serve and the local engine take it: '/name' or '/a/b', without a trailing '/'."""
    if not _PREFIX.fullmatch(prefix) or any(part in (".", "..") for part in prefix.split("/")):
        raise ConfigError(
            f"--route-prefix {prefix!r}: expected '/name' or '/a/b' (letters, digits, '._~-'; up to 4 parts, "
            "no trailing '/')"
        )
    return prefix


@dataclass(frozen=True)
class ServeConfig:
    """Validated here once; passed to every worker and replica as a plain dict."""

    folder: str  # the verified variant folder
    backend: str = "onnxruntime"
    replicas: int = 1
    max_batch: int = 256  # Ray engine: requests merged into one model call
    batch_wait_ms: float = 1.0  # Ray engine: how long the first request of a batch waits for company
    threads: int = 1  # intra-op threads per worker/replica: processes, not threads, scale out
    replica_cpus: float = 0.5  # Ray CPUs reserved per replica: a small MLP leaves half a core idle
    top: int = 3
    route_prefix: str = ""  # "" -> default_prefix(folder)

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= 256 or not 1 <= self.max_batch <= 4096:
            raise ConfigError(f"replicas {self.replicas} must be in 1..256 and max batch {self.max_batch} in 1..4096")
        if not 0 < self.replica_cpus <= 64:
            raise ConfigError(f"CPUs per replica {self.replica_cpus} must be in (0, 64]")
        if not 0 <= self.batch_wait_ms <= 1000:
            raise ConfigError(f"batch wait {self.batch_wait_ms} ms must be in 0..1000")
        object.__setattr__(self, "route_prefix", check_prefix(self.route_prefix or default_prefix(self.folder)))

    @property
    def app_name(self) -> str:
        """The Ray Serve application name: the route prefix's parts joined by '_' (fnnkit_mnist_C by default)."""
        return self.route_prefix.strip("/").replace("/", "_")

    def check_fits(self, cpus: int) -> None:
        """On a local Ray, replicas that do not fit would wait for CPUs forever: say so now."""
        if self.replicas * self.replica_cpus > cpus:
            raise ConfigError(
                f"{self.replicas} replicas x {self.replica_cpus} CPUs do not fit in the {cpus} CPUs of this Ray; "
                "lower --replicas or --replica-cpus, raise --num-cpus, or join a cluster with --address"
            )
