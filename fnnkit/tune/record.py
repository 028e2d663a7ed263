"""The tune record, stated once: the model ``fnnkit tune`` builds its JSON with and reads an earlier one back by.

It opens with the run header of every bench file (``schema``, ``kind``, ``run_id``, ``created``,
``environment``, ``config``) and holds the machine (a tune holds for it only), each backend's
accuracy, every trial and vote, the frontier, the pick and its runner-up. Every number is bounded,
so an earlier record given to ``--compare`` is hostile input that is validated here, field by field,
after the store's bounded reader refused what is not JSON, too big, too deep, NaN or infinite.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from fnnkit.bench.records import Bool, Float, Int, Record, RunHeader, read_record
from fnnkit.bench.scenarios.config import MAX_RATE
from fnnkit.env import MAX_BATCH
from fnnkit.tune.config import TuneConfig

SCHEMA = "fnnkit.tune/1"
REMAKE = "fnnkit tune --variant <V> --latency-bound-ms <MS> --json <file>"
MAX_SECONDS = 10 * 86_400.0  # what one measurement or a whole tune may have taken; the budget caps it at a day
MAX_ITEMS = 100_000  # trials or votes: a day's budget of 2 s votes is ~43,000; the reader's byte cap binds first
MAX_CORES = 4096

Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]  # a backend, variant or dataset name
Percent = Annotated[float, Field(strict=True, ge=0, le=100)]
Rate = Annotated[float, Field(strict=True, ge=0, le=MAX_RATE)]  # requests/s
Millis = Annotated[float, Field(strict=True, ge=0, le=MAX_SECONDS * 1000)]
Seconds = Annotated[float, Field(strict=True, ge=0, le=MAX_SECONDS)]


class Deployment(Record):
    backend: Name
    max_batch: Int = Field(ge=1, le=MAX_BATCH)
    max_queue_delay_us: Int = Field(ge=0, le=10_000_000)
    workers: Int = Field(ge=1, le=MAX_CORES)


class Trial(Record):
    """One peak search: its peak rate at the bound and the p99 there (both None: no rate met the bound)."""

    deployment: Deployment
    peak_qps: Rate | None
    p99_ms: Millis | None
    seconds: Seconds
    fidelity: Literal["short", "full"]
    cut: Bool = False  # the budget ended before the search did: no finding either way


class Vote(Record):
    deployment: Deployment
    qps: Rate
    passed: Bool
    seconds: Seconds


class FrontierPoint(Trial):
    accuracy: Percent


class Machine(Record):
    cores: Int = Field(ge=1, le=MAX_CORES)
    flags: tuple[Annotated[str, StringConstraints(max_length=32)], ...] = Field(max_length=512)  # SIMD flags
    others_cores_max: Float = Field(ge=0, le=MAX_CORES)  # the most cores other processes kept busy in any run


class SpaceRecord(Record):
    backends: tuple[Name, ...] = Field(max_length=256)
    max_batches: tuple[Annotated[int, Field(strict=True, ge=1, le=MAX_BATCH)], ...] = Field(max_length=64)
    queue_delays_us: tuple[Annotated[int, Field(strict=True, ge=0, le=10_000_000)], ...] = Field(max_length=64)
    workers: tuple[Annotated[int, Field(strict=True, ge=1, le=MAX_CORES)], ...] = Field(max_length=MAX_CORES)
    size: Int = Field(ge=0, le=10**12)
    covered: Int = Field(ge=0, le=2 * MAX_ITEMS)


class TuneRecord(RunHeader):
    schema_id: Literal["fnnkit.tune/1"] = Field(alias="schema")
    kind: Literal["tune"]
    config: TuneConfig
    machine: Machine
    variant: Name
    dataset: Name
    accuracy: dict[Name, Percent] = Field(max_length=256)  # every backend whose accuracy was measured
    dropped: dict[Name, Annotated[str, StringConstraints(max_length=1000)]] = Field(max_length=256)
    estimates: dict[Name, Rate] = Field({}, max_length=256)  # samples/s in process: the order backends were tried in
    outvoted: dict[Name, Rate] = Field({}, max_length=256)  # backend -> the rate its default batching did not sustain
    space: SpaceRecord
    budget_s: Seconds
    spent_s: Seconds
    wall_s: Seconds
    out_of_budget: Bool
    trials: tuple[Trial, ...] = Field(max_length=MAX_ITEMS)
    votes: tuple[Vote, ...] = Field(max_length=MAX_ITEMS)
    frontier: tuple[FrontierPoint, ...] = Field(max_length=MAX_ITEMS)
    pick: Trial | None
    runner_up: Trial | None
    margin: Float | None = Field(ge=-1, le=10**9)  # the pick's lead over the runner-up, at margin_fidelity
    margin_fidelity: Literal["short", "full"] | None = None  # full against full, else both best short figures


def read_tune(path: str | os.PathLike, flag: str = "--compare") -> TuneRecord:
    """An earlier tune record, validated: missing, not JSON, too big or deep, NaN, another kind or schema
    version, a field out of bounds -> one ArtifactError line naming the file and what to do."""
    return read_record(TuneRecord, path, f"{flag} tune record", REMAKE, schema=SCHEMA)
