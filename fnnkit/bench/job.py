"""What crosses the process boundary: one Job in, one Outcome out, both plain dataclasses.

One JSON codec serves both: ``write_record`` writes ``asdict(obj)`` atomically, ``read_record``
builds ``cls(**data)``; each class turns its own JSON lists back into its types in
``__post_init__``, so the same constructor serves Python callers and JSON alike.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from fnnkit.bench.config import BenchConfig
from fnnkit.bench.results import BenchRow
from fnnkit.paths import require_absolute
from fnnkit.store import atomic_write_json, read_json

R = TypeVar("R")
# BenchConfig fields a worker needs unchanged: copied by name, so a new setting is one line in each class
FROM_CONFIG = ("min_time_s", "max_time_s", "warmup_rounds", "warmup_s", "stability", "accuracy", "data_dir")


@dataclass(frozen=True)
class Job:
    """One backend on one device for one variant: everything a worker needs."""

    variant_dir: str
    backend: str
    device: str
    batch_threads: tuple[tuple[int, int], ...]  # (batch size, threads), ascending batch
    min_time_s: float
    max_time_s: float
    warmup_rounds: int
    warmup_s: float
    stability: float
    accuracy: bool = True
    data_dir: str | None = None
    wait_policy: str = "passive"  # "spin" | "passive", chosen for this job (fnnkit.bench.waiting)

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_threads", tuple((int(b), int(t)) for b, t in self.batch_threads))
        require_absolute(self.variant_dir, "Job.variant_dir")  # a worker runs in its own private folder
        if self.data_dir is not None:
            require_absolute(self.data_dir, "Job.data_dir")

    @classmethod
    def of(cls, config: BenchConfig, folder: Path, backend: str, device: str, wait_policy: str = "passive") -> Job:
        """The job measuring ``backend`` on ``device`` for the variant in ``folder``, as ``config`` asks."""
        return cls(
            variant_dir=str(folder),
            backend=backend,
            device=device,
            wait_policy=wait_policy,
            batch_threads=tuple((b, config.threads_for(b)) for b in config.batch_sizes),
            **{name: getattr(config, name) for name in FROM_CONFIG},
        )


@dataclass
class Outcome:
    """What a job produced: rows, or why the backend could not run here, or the error that stopped it."""

    status: str  # "ok" | "unavailable" | "error"
    rows: list[BenchRow] = field(default_factory=list)
    message: str = ""  # why unavailable, or what failed: one line a person can act on

    def __post_init__(self) -> None:
        self.rows = [row if isinstance(row, BenchRow) else BenchRow(**row) for row in self.rows]


def write_record(obj: Job | Outcome, path: str | os.PathLike) -> Path:
    return atomic_write_json(path, asdict(obj))


def read_record(cls: type[R], path: str | os.PathLike) -> R:
    return cls(**read_json(path, what=f"benchmark {cls.__name__.lower()}"))
