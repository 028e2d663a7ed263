"""What a latency run produces, as frozen pydantic records, and its JSON form (schema ``fnnkit.bench/2``).

One ``BenchRow`` per (variant, backend, device, batch size), built once by the measuring process
with its sub-records: ``latency``, ``trust``, ``setup``, ``parity``, ``memory``; the run adds
``versus`` (this row against eager and the machine's ceiling) once every row is in. A saved run
is validated by these models when read back; an older schema is refused in one line.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

from fnnkit.bench.records import Bool, Float, Int, Record, RunHeader, read_record, save_record
from fnnkit.env import MAX_BATCH, MAX_THREADS

SCHEMA = "fnnkit.bench/2"  # 2: nested rows and the run header
REMAKE = "fnnkit bench --json PATH"


class Latency(Record):
    """One call on a prepared input, in microseconds, over ``samples`` timed calls."""

    p50_us: Float = Field(gt=0)
    p90_us: Float = Field(ge=0)
    p99_us: Float = Field(ge=0)
    mean_us: Float = Field(ge=0)
    min_us: Float = Field(ge=0)
    spread: Float = Field(ge=0)  # IQR / median
    samples: Int = Field(ge=1)
    seconds: Float = Field(ge=0)  # how long the timed calls took
    distribution_us: dict[str, Float] = {}  # p1, p25, p50, p75, p99: the box plot
    end_to_end_p50_us: Float | None = Field(None, gt=0)  # host tensor in, host logits out; measured on GPUs


class Trust(Record):
    """Whether the latency can be believed: stable, narrow, measured on a quiet machine."""

    stable: Bool  # the median stopped moving before the time budget ran out
    wide: Bool  # spread above the run's limit
    busy_cores: Float = Field(ge=0)  # cores other processes used meanwhile
    contended: Bool  # busy_cores above the run's limit

    @property
    def steady(self) -> bool:
        return self.stable and not self.wide and not self.contended


class Setup(Record):
    """The cost of the Predictor this row was timed with."""

    load_s: Float = Field(ge=0)
    first_call_ms: Float = Field(ge=0)  # first call at this batch size: includes compiling for its shape
    recompiles: Int = Field(0, ge=0)  # graphs compiled inside the timed region (must be 0)


class Parity(Record):
    """The backend against eager on the whole test set (the same for all of a backend's rows)."""

    accuracy: Float = Field(ge=0, le=100)
    eager_accuracy: Float = Field(ge=0, le=100)
    max_abs_diff: Float = Field(ge=0)
    agreement: Float = Field(ge=0, le=100)  # % of test images with eager's top-1 class
    agrees: Bool  # within the backend's tolerance of eager


class Memory(Record):
    peak_rss_mb: Float = Field(ge=0)  # peak resident memory of the measuring process
    rss_added_mb: Float  # resident memory the Predictor added (load + warm-up); may be negative
    peak_device_mb: Float | None = Field(None, ge=0)  # peak device memory on a GPU


class Versus(Record):
    """Filled by the run once every row is in: needs other rows and the ceilings."""

    speedup_vs_eager: Float | None = Field(None, gt=0)  # eager's p50 / this p50, same variant, device, batch
    ceiling_share: Float | None = Field(None, ge=0)  # gflops / the ceiling at the same threads and precision
    ceiling_suspect: Bool = False  # above its own ceiling: that ceiling is wrong for this row; no share shown


class BenchRow(Record):
    variant: str = Field(max_length=64)
    backend: str = Field(max_length=64)
    device: str = Field(max_length=16)
    precision: str = Field(max_length=16)
    batch_size: Int = Field(ge=1, le=MAX_BATCH)
    threads: Int = Field(ge=1, le=MAX_THREADS)
    wait_policy: str = Field(max_length=32)  # how idle intra-op threads waited (fnnkit.bench.waiting)
    throughput: Float = Field(ge=0)  # samples per second = batch / median latency
    gflops: Float = Field(ge=0)  # forward FLOP rate at the median
    latency: Latency
    trust: Trust
    setup: Setup
    parity: Parity | None  # None: accuracy not measured
    memory: Memory
    versus: Versus | None = None

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.variant, self.backend, self.device, self.batch_size)


class Skipped(Record):
    variant: str
    backend: str
    device: str
    reason: str  # why it cannot run here, or the command that makes what it lacks
    missing: Bool = False  # an artifact is missing (not the machine): the reason names the command that makes it


class Recommendation(Record):
    variant: str
    device: str
    batch_size: Int = Field(ge=1, le=MAX_BATCH)
    backend: str | None  # None: no backend matched eager's accuracy
    p50_us: Float | None
    throughput: Float | None
    speedup_vs_eager: Float | None
    runner_up: str | None = None


@dataclass(frozen=True, config=ConfigDict(extra="forbid", allow_inf_nan=False))
class Ceiling:
    """The machine's own limit in one precision: a large matmul on a device at a given thread count.

    Each precision has its own, so a bf16 or int8 row's "share of ceiling" is judged against what
    this hardware does in that precision. A pydantic dataclass: ``fnnkit.bench.ceiling`` builds it
    positionally.
    """

    device: str
    threads: Int = Field(ge=1, le=MAX_THREADS)
    size: Int = Field(ge=1)
    gflops: Float = Field(ge=0)  # the ceiling: median of the repetitions' rates (int8: integer ops)
    median_gflops: Float = Field(ge=0)
    samples: Int = Field(ge=1)  # repetitions (fnnkit.bench.ceiling), or calls of a one-go ``matmul_ceiling``
    precision: str = "fp32"
    spread: Float = Field(0.0, ge=0)  # (max - min) / median of the repetitions' rates


class BenchRun(Record):
    header: RunHeader
    threads: dict[str, Any]  # the policy and what torch / ONNX Runtime were told
    isolation: Literal["subprocess", "in-process"]
    ceilings: list[Ceiling]
    rows: list[BenchRow]
    skipped: list[Skipped] = []
    recommendations: list[Recommendation] = []

    @property
    def run_id(self) -> str:
        return self.header.run_id


def load_run(path: str | os.PathLike) -> BenchRun:
    """A saved run, validated: missing file, bad JSON, other schema or a bad field -> one ArtifactError line."""
    return read_record(BenchRun, path, "benchmark file", REMAKE, schema=SCHEMA)


def save_run(run: BenchRun, path: str | os.PathLike) -> Path:
    return save_record(run, path)


def flat(row: BenchRow) -> dict[str, Any]:
    """A row as one level of dotted names (``latency.p50_us``), without the percentile dict: a CSV line."""
    out: dict[str, Any] = {}
    for name, value in row.model_dump(mode="json", exclude={"latency": {"distribution_us"}}).items():
        if isinstance(value, dict):
            out.update({f"{name}.{key}": item for key, item in value.items()})
        elif name not in ("parity", "versus"):  # None sub-records: their columns stay empty
            out[name] = value
    return out


def csv_fields() -> list[str]:
    """Every CSV column, in the rows' field order (sub-records that may be None included)."""
    columns: list[str] = []
    for name, info in BenchRow.model_fields.items():
        sub = [a for a in getattr(info.annotation, "__args__", (info.annotation,)) if isinstance(a, type)]
        model = next((a for a in sub if issubclass(a, Record)), None)
        if model is None:
            columns.append(name)
        else:
            columns += [f"{name}.{key}" for key in model.model_fields if key != "distribution_us"]
    return columns


def write_csv(run: BenchRun, path: str | os.PathLike) -> Path:
    """One line per row, every scalar field (not the percentile dict), written atomically."""
    from fnnkit.store import atomic_write_bytes

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["run_id", *csv_fields()], lineterminator="\n")
    writer.writeheader()
    for row in run.rows:
        writer.writerow({"run_id": run.run_id, **flat(row)})
    return atomic_write_bytes(path, buffer.getvalue().encode())
