"""What `fnnkit serve` deploys, as plain values: built by the CLI without importing Ray, read by every worker."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from fnnkit.bench.records import Float, Int, Record
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


SERVE_FILE_SCHEMA = "fnnkit.serve-config/1"


class MadeOn(Record):
    """The machine a serve config was tuned on: its figures hold there."""

    cpu: str = Field(max_length=200)
    flags: tuple[Annotated[str, Field(max_length=40)], ...] = Field(max_length=512)


class ServeFile(Record):
    """What `fnnkit tune --write-serve` writes and `fnnkit serve --config` reads: the deployment tune picked."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    schema_id: Literal["fnnkit.serve-config/1"] = Field(alias="schema")
    variant: str = Field(pattern=r"^[A-E]$")
    dataset: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    backend: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    workers: Int = Field(ge=1, le=256)  # local engine: worker processes; Ray engine: replicas
    max_batch: Int = Field(ge=1, le=4096)  # Ray engine: requests merged into one model call
    batch_wait_ms: Float = Field(ge=0, le=1000)  # Ray engine: how long a batch waits to fill
    made_on: MadeOn
    source: str = Field(max_length=200)  # the tune run it came from


def read_serve_file(path: Path) -> ServeFile:
    """A serve config through the bounded JSON reader and its schema, or one ConfigError line naming the file."""
    from pydantic import ValidationError

    from fnnkit.store import read_json

    payload = read_json(path, what="serve config", limit=64 << 10)
    try:
        return ServeFile.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        raise ConfigError(
            f"--config {path}: {where}: {error['msg']}; write it again with `fnnkit tune ... --write-serve {path}`"
        ) from None


def machine_difference(made_on: MadeOn) -> str | None:
    """How this CPU differs from the one a config was tuned on (instruction sets), or None when it does not."""
    from fnnkit.capabilities import cpu_capabilities
    from fnnkit.env import cpu_model

    here = set(cpu_capabilities().simd_flags())
    missing, extra = sorted(set(made_on.flags) - here), sorted(here - set(made_on.flags))
    if not missing and not extra and made_on.cpu == cpu_model():
        return None
    parts = [f"tuned on {made_on.cpu!r}, this is {cpu_model()!r}"]
    if missing:
        parts.append(f"lacks {', '.join(missing[:6])}")
    if extra:
        parts.append(f"adds {', '.join(extra[:6])}")
    return "; ".join(parts)
