"""What crosses the process boundary: one Job in, one Outcome out, both frozen records.

The one JSON codec of ``fnnkit.bench.records`` serves both: ``save_record`` writes the model's
JSON atomically, ``read_record`` validates it back through the same model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from fnnkit.bench.config import BenchConfig
from fnnkit.bench.records import Bool, Float, Int, Record
from fnnkit.bench.results import BenchRow
from fnnkit.paths import require_absolute

# BenchConfig fields a worker needs unchanged: copied by name, their bounds stated once, on BenchConfig
FROM_CONFIG = (
    "min_time_s", "max_time_s", "warmup_rounds", "warmup_s", "stability", "accuracy", "data_dir", "spread_limit",
    "contention_limit",
)  # fmt: skip


class Job(Record):
    """One backend on one device for one variant: everything a worker needs."""

    variant_dir: str
    backend: str
    device: str
    batch_threads: tuple[tuple[Int, Int], ...]  # (batch size, threads), ascending batch
    min_time_s: Float
    max_time_s: Float
    warmup_rounds: Int
    warmup_s: Float
    stability: Float
    spread_limit: Float
    contention_limit: Float
    accuracy: Bool = True
    data_dir: str | None = None
    wait_policy: Literal["spin", "passive"] = "passive"  # chosen for this job (fnnkit.bench.waiting)

    @field_validator("variant_dir", "data_dir")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None:
            require_absolute(value, "Job folder")  # a worker runs in its own private folder
        return value

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


class Outcome(Record):
    """What a job produced: rows, or why the backend could not run here, or the error that stopped it."""

    status: Literal["ok", "unavailable", "error"]
    rows: list[BenchRow] = []
    message: str = Field("", max_length=100_000)  # why unavailable, or what failed: a line a person can act on
