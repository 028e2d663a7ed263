"""What `fnnkit serve` deploys, as plain values: built by the CLI without importing Ray, read by every replica."""

from __future__ import annotations

from dataclasses import dataclass

from fnnkit.errors import ConfigError


@dataclass(frozen=True)
class ServeConfig:
    """Validated here once; passed to every replica as a plain dict."""

    folder: str  # the verified variant folder
    backend: str = "onnxruntime"
    replicas: int = 1
    max_batch: int = 256  # requests merged into one model call
    batch_wait_ms: float = 1.0  # how long the first request of a batch waits for company
    threads: int = 1  # intra-op threads per replica: replicas, not threads, scale out
    replica_cpus: float = 0.5  # Ray CPUs reserved per replica: a small MLP leaves half a core idle
    top: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= 256 or not 1 <= self.max_batch <= 4096:
            raise ConfigError(f"replicas {self.replicas} must be in 1..256 and max batch {self.max_batch} in 1..4096")
        if not 0 < self.replica_cpus <= 64:
            raise ConfigError(f"CPUs per replica {self.replica_cpus} must be in (0, 64]")
        if not 0 <= self.batch_wait_ms <= 1000:
            raise ConfigError(f"batch wait {self.batch_wait_ms} ms must be in 0..1000")

    def check_fits(self, cpus: int) -> None:
        """On a local Ray, replicas that do not fit would wait for CPUs forever: say so now."""
        if self.replicas * self.replica_cpus > cpus:
            raise ConfigError(
                f"{self.replicas} replicas x {self.replica_cpus} CPUs do not fit in the {cpus} CPUs of this Ray; "
                "lower --replicas or --replica-cpus, raise --num-cpus, or join a cluster with --address"
            )
