"""The base of every bench config and result record, the run header, and the one reader and writer.

``Record`` is a frozen pydantic model that refuses unknown keys, NaN and infinity; ``Int``,
``Float`` and ``Bool`` refuse a value of another JSON type (a bool for a number, 1 for a bool)
that a hand-edited file or a caller could slip in. Bounds are ``Field(ge=..., le=...)`` on each
model, stated once: the CLI reads its option bounds from them.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from fnnkit.errors import ArtifactError
from fnnkit.store import atomic_write_json, read_json

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]  # an int is still a float here; a bool or a string is not
Bool = Annotated[bool, Strict()]  # true or false; not 1 or "yes"
R = TypeVar("R", bound="Record")


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class RunHeader(Record):
    """What opens every result file: which schema, which kind of run, when, where, and with what config."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    schema_id: str = Field(alias="schema", max_length=64)
    kind: Literal["latency", "load", "coldstart", "tune"]
    run_id: str = Field(max_length=64)
    created: str = Field(max_length=64)
    environment: dict[str, Any]  # fnnkit.env.environment(): versions, CPU, GPU
    config: dict[str, Any]  # the run's config, as its model dumps it

    @classmethod
    def new(cls, schema: str, kind: str, config: BaseModel) -> RunHeader:
        from fnnkit.env import environment

        return cls(
            schema=schema,
            kind=kind,
            run_id=time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2),
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            environment=environment(),
            config=config.model_dump(mode="json"),
        )


def save_record(record: Record, path: str | os.PathLike) -> Path:
    """The record's JSON, written atomically (``store.atomic_write_json``)."""
    return atomic_write_json(path, record.model_dump(mode="json"))


def read_record(cls: type[R], path: str | os.PathLike, what: str, remake: str, schema: str | None = None) -> R:
    """A record read back through the bounded reader, then validated by its model: one ArtifactError line
    naming the file, the field and what to do (``remake``: the command that writes a good one)."""
    path = Path(path)
    payload = read_json(path, what=what)
    if schema is not None:
        header = payload.get("header")
        found = header.get("schema") if isinstance(header, dict) else payload.get("schema")
        if found != schema:
            raise ArtifactError(
                f"{what} {path} has schema {found!r:.80}; this fnnkit reads {schema!r}. Compare only runs written by "
                f"the same fnnkit version, or re-create it with `{remake}`"
            )
    try:
        return cls.model_validate(payload)
    except ValidationError as exc:
        raise ArtifactError(f"{what} {path}: {first_error(exc)}; re-create it with `{remake}`") from None


def first_error(exc: ValidationError) -> str:
    """The first problem of a ValidationError as one line: ``rows.0.latency.p50_us: Input should be > 0``."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "top level"
    return f"{where}: {error['msg']}"
