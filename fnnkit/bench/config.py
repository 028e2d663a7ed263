"""What one latency run measures and how hard it tries: one frozen pydantic config, validated once.

Every bound is stated here, once: the CLI reads its option bounds from these fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from fnnkit.bench.records import Bool, Float, Int, Record
from fnnkit.bench.stats import CONTENDED_CORES
from fnnkit.env import MAX_BATCH, MAX_THREADS, usable_cpus
from fnnkit.errors import ConfigError
from fnnkit.paths import user_path
from fnnkit.registry import DEVICES

# the registries import torch: their lookups run inside the validators, so a command's options can read
# these models' bounds at import and `fnnkit --help` stays fast
VARIANT_NAMES = ("A", "B", "C", "D", "E")  # fnnkit.variants.VARIANTS, checked by a test
COLDSTART_BACKENDS = ("eager", "torchscript", "aoti", "onnxruntime", "onnxruntime-int8-static", "openvino")

DEFAULT_BATCH_SIZES = (1, 64, 1024, 8192)
SMALL_BATCH = 64  # auto threads: at or below this a call is microseconds, and waking a second thread costs more
MAX_ROW_S = 600.0  # a row timed longer than ten minutes is a typo, not a setting


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """``"1,64,1024"`` -> (1, 64, 1024); anything but positive integers is a ConfigError naming it."""
    sizes = []
    for piece in text.split(","):
        piece = piece.strip()
        try:
            size = int(piece)
        except ValueError:
            raise ConfigError(
                f"--batch-sizes: {piece!r} is not an integer; give positive integers like 1,64,1024,8192"
            ) from None
        sizes.append(size)
    return validate_batch_sizes(sizes)


def validate_batch_sizes(sizes: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    if not sizes:
        raise ConfigError("--batch-sizes: give at least one batch size, e.g. 1,64,1024,8192")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH:
            raise ConfigError(f"--batch-sizes: {str(size)[:30]} is not a positive integer up to {MAX_BATCH}")
    return tuple(sorted(set(sizes)))


class Selection(Record):
    """What every kind of run selects: trained models under ``artifacts`` and the backends to run."""

    model_config = ConfigDict(validate_default=True)  # the defaults pass the same validators (paths made absolute)

    backends: tuple[str, ...] = ()  # empty: every registered backend
    artifacts: str = "artifacts"  # made absolute at construction: workers and probes run in a private folder
    dataset: str | None = None  # which trained models to use; None: the best dataset present

    @field_validator("artifacts", "data_dir", check_fields=False)
    @classmethod
    def _absolute(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else str(user_path(value, info.field_name, folder=True))  # Python's boundary

    @field_validator("backends")
    @classmethod
    def _backends(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from fnnkit.backends import resolve_backends

        return tuple(b.name for b in resolve_backends(list(value) or ["all"]))


class BenchConfig(Selection):
    variants: tuple[str, ...] = VARIANT_NAMES
    devices: tuple[str, ...] = ("cpu",)
    batch_sizes: tuple[Int, ...] = DEFAULT_BATCH_SIZES
    threads: Int | None = Field(None, ge=1, le=MAX_THREADS)  # None: 1 for batches <= SMALL_BATCH, every core above
    min_time_s: Float = Field(0.3, gt=0, le=MAX_ROW_S)  # each row is timed at least this long...
    max_time_s: Float | None = Field(None, gt=0, le=4 * MAX_ROW_S)  # ...at most this long (4 x min) while unstable
    warmup_rounds: Int = Field(10, ge=1, le=10**6)  # plus at least warmup_s of calls, whichever is longer
    warmup_s: Float = Field(0.05, gt=0, le=MAX_ROW_S)
    stability: Float = Field(0.03, gt=0, lt=1)  # stable: medians of the four quarters within 3% of each other
    spread_limit: Float = Field(0.25, gt=0, le=100)  # IQR / median above this: the row is too noisy to trust
    accuracy_tolerance: Float = Field(0.0, ge=0, le=100)  # points of accuracy a recommended backend may lose
    accuracy: Bool = True  # measure test accuracy and max |Δ logits| per backend
    data_dir: str | None = None  # made absolute; None: the default data folder
    contention_limit: Float = Field(CONTENDED_CORES, gt=0, le=MAX_THREADS)  # busy cores elsewhere: contended above
    cores: Int = Field(default_factory=usable_cpus, ge=1, le=MAX_THREADS)
    wait_policy: Literal["auto", "spin", "passive"] = "auto"  # "auto": spin when the machine is quiet

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from fnnkit.variants import resolve_variants

        return tuple(spec.name for spec in resolve_variants(list(value)))

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from fnnkit.backends import check_device

        if not value:
            raise ConfigError(f"--device: give at least one of {', '.join(DEVICES)}")
        return tuple(dict.fromkeys(check_device(d) for d in value))

    @field_validator("batch_sizes")
    @classmethod
    def _batch_sizes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return validate_batch_sizes(list(value))

    @model_validator(mode="before")
    @classmethod
    def _time_cap(cls, data: Any) -> Any:
        floor = data.get("min_time_s", 0.3) if isinstance(data, dict) else None
        if isinstance(floor, int | float) and not isinstance(floor, bool) and data.get("max_time_s") is None:
            return {**data, "max_time_s": 4 * floor}  # a bad min_time_s is named by its own field
        return data

    @model_validator(mode="after")
    def _cap_after_floor(self) -> BenchConfig:
        if self.max_time_s < self.min_time_s:
            raise ValueError(f"max_time_s ({self.max_time_s}) must be >= min_time_s ({self.min_time_s})")
        return self

    def threads_for(self, batch: int) -> int:
        """Threads for a batch size: fixed by --threads, else one for tiny batches and all cores above."""
        if self.threads is not None:
            return self.threads
        return 1 if batch <= SMALL_BATCH else self.cores

    @property
    def thread_policy(self) -> str:
        if self.threads is not None:
            return f"{self.threads} for every batch size (--threads)"
        return f"auto: 1 for batch <= {SMALL_BATCH}, {self.cores} (all cores) above"


class ColdStartConfig(Selection):
    """One trained variant, CPU backends, fresh processes per backend."""

    variant: str = "A"
    backends: tuple[str, ...] = COLDSTART_BACKENDS
    repeats: Int = Field(10, ge=1, le=1000)  # fresh processes per backend: p50/p90 over them
    threads: Int = Field(1, ge=1, le=MAX_THREADS)  # intra-op threads in each process

    @field_validator("variant")
    @classmethod
    def _variant(cls, value: str) -> str:
        from fnnkit.variants import get_spec

        return get_spec(value).name
