"""What a benchmark run produces, as plain dataclasses, and its JSON form (schema ``fnnkit.bench/1``).

One ``BenchRow`` per (variant, backend, device, batch size): latency, throughput, setup,
accuracy and memory side by side, flat, so JSON, CSV, tables and the regression gate read
the same fields. A saved run is validated field by field when read back.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fnnkit.env import MAX_BATCH
from fnnkit.errors import ArtifactError
from fnnkit.store import atomic_write_json, read_json

SCHEMA = "fnnkit.bench/1"


@dataclass(frozen=True)
class BenchRow:
    variant: str
    backend: str
    device: str
    precision: str
    batch_size: int
    threads: int
    # latency of one call on a prepared input, microseconds
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    min_us: float
    spread: float  # IQR / median
    samples: int
    measure_s: float
    stable: bool  # the median stopped moving before the time budget ran out
    others_cores: float  # CPU cores other processes used meanwhile: contention while measuring
    # derived speed
    throughput: float  # samples per second = batch / median latency
    gflops: float  # forward FLOP rate at the median
    # setup cost of the Predictor this row was timed with
    load_s: float
    first_call_ms: float  # first call at this batch size: includes compiling or building for its shape
    # accuracy of the backend on the test set (the same for all of a backend's rows)
    accuracy: float | None
    eager_accuracy: float | None
    max_abs_diff: float | None
    agreement: float | None  # % of test images with eager's top-1 class
    agrees: bool | None  # within the backend's tolerance of eager (None: accuracy not measured)
    # memory
    peak_rss_mb: float  # peak resident memory of the measuring process
    rss_added_mb: float  # resident memory the Predictor added (load + warm-up)
    peak_device_mb: float | None  # peak device memory on a GPU
    # end to end (host tensor in, host logits out); measured on GPUs, where they differ
    e2e_p50_us: float | None = None
    # filled in by the run, comparing rows with each other and with the machine
    ceiling_share: float | None = None  # gflops / the matmul ceiling measured at the same thread count
    speedup_vs_eager: float | None = None  # eager's p50 / this p50, same variant, device, batch size
    wide: bool = False  # spread above the run's limit: too noisy to trust
    contended: bool = False  # other processes used a sizeable share of the cores meanwhile
    ceiling_suspect: bool = False  # above its own ceiling: that ceiling is wrong for this row; no share shown
    wait_policy: str = ""  # how idle intra-op threads waited: "spin" or "passive" (fnnkit.bench.waiting)
    recompiles: int = 0  # graphs compiled inside the timed region (must be 0)
    distribution_us: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.variant, self.backend, self.device, self.batch_size)

    @property
    def steady(self) -> bool:
        """Trusted: stable, not too wide, not measured under contention."""
        return self.stable and not self.wide and not self.contended


@dataclass(frozen=True)
class Skipped:
    variant: str
    backend: str
    device: str
    reason: str


@dataclass(frozen=True)
class Recommendation:
    variant: str
    device: str
    batch_size: int
    backend: str | None  # None: no backend matched eager's accuracy
    p50_us: float | None
    throughput: float | None
    speedup_vs_eager: float | None
    runner_up: str | None = None


@dataclass(frozen=True)
class Ceiling:
    """The machine's own limit in one precision: a large matmul on a device at a given thread count.

    Each precision has its own, so a bf16 or int8 row's "share of ceiling" is judged against
    what this hardware does in that precision (on a CPU without AMX, bf16 may be below fp32).
    """

    device: str
    threads: int
    size: int
    gflops: float  # the ceiling: median of the repetitions' rates (int8: giga integer multiply-adds x2 per second)
    median_gflops: float
    samples: int  # repetitions (fnnkit.bench.ceiling), or matmul calls for a one-go ``matmul_ceiling``
    precision: str = "fp32"
    spread: float = 0.0  # (max - min) / median of the repetitions' rates


@dataclass(frozen=True)
class BenchRun:
    run_id: str
    created: str
    config: dict
    environment: dict
    threads: dict  # the policy and what torch / ONNX Runtime were told
    isolation: str  # "subprocess" | "in-process"
    ceilings: list[Ceiling]
    rows: list[BenchRow]
    skipped: list[Skipped] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    schema: str = SCHEMA

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- reading back

_TOP_LEVEL = ("schema", "run_id", "created", "config", "environment", "threads", "isolation", "ceilings", "rows")


CSV_FIELDS = [f.name for f in fields(BenchRow) if f.name != "distribution_us"]


def _required(cls: type) -> list[str]:
    return [
        f.name for f in fields(cls) if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


def _build(cls: type, data: Any, where: str, path: Path) -> Any:
    if not isinstance(data, dict):
        raise ArtifactError(f"benchmark file {path}: {where} must be a JSON object, found {type(data).__name__}")
    missing = [name for name in _required(cls) if name not in data]
    if missing:
        raise ArtifactError(
            f"benchmark file {path}: {where} lacks field(s) {', '.join(missing)}; it was edited by hand or "
            "written by another tool. Re-create it with `fnnkit bench --json PATH`"
        )
    _check_types(cls, data, where, path)
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


_JSON_TYPES = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "dict": (dict,),
    "list": (list,),
    "None": (type(None),),
}  # fmt: skip  (a plain float field holds a number: null only where the type says "| None")


def _check_types(cls: type, data: dict, where: str, path: Path) -> None:
    """A hand-edited value of the wrong JSON type is named here, not met as a crash after minutes of measuring."""
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        kinds = [part.split("[")[0].strip() for part in str(f.type).split("|")]  # "float | None", "dict[str, float]"
        allowed = tuple(t for kind in kinds for t in _JSON_TYPES.get(kind, (object,)))
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ArtifactError(
                f"benchmark file {path}: {where} field {f.name!r} is {value!r}, expected {f.type}; it was edited by "
                "hand or written by another tool. Re-create it with `fnnkit bench --json PATH`"
            )


def run_from_dict(payload: dict, path: Path) -> BenchRun:
    schema = payload.get("schema")
    if schema != SCHEMA:
        raise ArtifactError(
            f"benchmark file {path} has schema {schema!r}; this fnnkit reads {SCHEMA!r}. "
            "Compare only runs written by the same fnnkit version, or re-create the baseline with `fnnkit bench --json`"
        )
    missing = [name for name in _TOP_LEVEL if name not in payload]
    if missing:
        raise ArtifactError(
            f"benchmark file {path} lacks field(s) {', '.join(missing)}; re-create it with `fnnkit bench --json`"
        )
    for name in ("rows", "ceilings"):
        if not isinstance(payload[name], list):
            raise ArtifactError(f"benchmark file {path}: field {name!r} must be a list")
    _check_types(BenchRun, payload, "top level", path)
    top = {k: v for k, v in payload.items() if k in {f.name for f in fields(BenchRun)}}
    top["rows"] = [_build(BenchRow, r, f"row {i}", path) for i, r in enumerate(payload["rows"])]
    for i, row in enumerate(top["rows"]):
        if not (row.p50_us > 0 and 1 <= row.batch_size <= MAX_BATCH and row.throughput >= 0):
            raise ArtifactError(
                f"benchmark file {path}: row {i} has p50_us {row.p50_us}, batch_size {row.batch_size}: not a "
                "measurement fnnkit writes. Re-create it with `fnnkit bench --json PATH`"
            )
    top["ceilings"] = [_build(Ceiling, c, f"ceiling {i}", path) for i, c in enumerate(payload["ceilings"])]
    top["skipped"] = [_build(Skipped, s, f"skipped {i}", path) for i, s in enumerate(payload.get("skipped", []))]
    top["recommendations"] = [
        _build(Recommendation, r, f"recommendation {i}", path) for i, r in enumerate(payload.get("recommendations", []))
    ]
    return BenchRun(**top)


def load_run(path: str | os.PathLike) -> BenchRun:
    """A saved run, validated: missing file, bad JSON, other schema or missing fields -> ArtifactError."""
    path = Path(path)
    return run_from_dict(read_json(path, what="benchmark file"), path)


def save_run(run: BenchRun, path: str | os.PathLike) -> Path:
    return atomic_write_json(path, _finite(run.as_dict()))


def write_csv(run: BenchRun, path: str | os.PathLike) -> Path:
    """One line per row, every scalar field (not the percentile dict), written atomically."""
    from fnnkit.store import atomic_write_bytes

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["run_id", *CSV_FIELDS], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in run.rows:
        writer.writerow({"run_id": run.run_id, **asdict(row)})
    return atomic_write_bytes(path, buffer.getvalue().encode())


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such a value becomes null rather than an invalid file."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
