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
    top: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= 256 or not 1 <= self.max_batch <= 4096:
            raise ConfigError(f"replicas {self.replicas} must be in 1..256 and max batch {self.max_batch} in 1..4096")
        if not 0 <= self.batch_wait_ms <= 1000:
            raise ConfigError(f"batch wait {self.batch_wait_ms} ms must be in 0..1000")
