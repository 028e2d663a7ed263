"""What a tune is asked for; its bounds are the CLI's (``field_number``), stated once, here."""

from __future__ import annotations

from pydantic import Field, field_validator

from fnnkit.bench.records import Float, Int, Record
from fnnkit.env import MAX_THREADS
from fnnkit.errors import unknown_choice
from fnnkit.registry import DEVICES


class TuneConfig(Record):
    latency_bound_ms: Float = Field(2.0, ge=0.01, le=60_000)  # the p99 bound every deployment must meet
    min_accuracy: Float | None = Field(None, ge=0, le=100)  # percent; None: every backend's accuracy is acceptable
    budget_s: Float = Field(300.0, ge=10, le=86_400)  # seconds of measuring
    backends: str = Field("all", max_length=512)
    device: str = "cpu"
    threads: Int = Field(1, ge=1, le=MAX_THREADS)  # intra-op threads per worker: batches are small

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if device not in DEVICES:
            raise unknown_choice("device", device, DEVICES)
        return device
