"""What one benchmark run measures and how hard it tries: one frozen config, validated once."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from fnnkit.backends import DEVICES, check_device, resolve_backends
from fnnkit.bench.stats import CONTENDED_CORES
from fnnkit.bench.waiting import check_policy
from fnnkit.env import MAX_BATCH, MAX_THREADS
from fnnkit.errors import ConfigError
from fnnkit.paths import user_path
from fnnkit.variants import VARIANTS, resolve_variants

DEFAULT_BATCH_SIZES = (1, 64, 1024, 8192)
SMALL_BATCH = 64  # auto threads: at or below this a call is microseconds, and waking a second thread costs more


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


def physical_cores() -> int:
    """Cores this process may run on (respects taskset/cgroups better than os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class BenchConfig:
    variants: tuple[str, ...] = tuple(VARIANTS)
    backends: tuple[str, ...] = ()  # empty: every registered backend
    devices: tuple[str, ...] = ("cpu",)
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    threads: int | None = None  # None: 1 thread for batches <= SMALL_BATCH, every core above
    min_time_s: float = 0.3  # each row is timed at least this long...
    max_time_s: float | None = None  # ...and at most this long (default 4 x min_time) while not yet stable
    warmup_rounds: int = 10  # plus at least warmup_s of calls, whichever is longer
    warmup_s: float = 0.05
    stability: float = 0.03  # stable: medians of the four quarters of the samples within 3% of each other
    spread_limit: float = 0.25  # IQR / median above this: the row is flagged as too noisy to trust
    accuracy_tolerance: float = 0.0  # points of test accuracy a recommended backend may differ from eager by
    accuracy: bool = True  # measure test accuracy and max |Δ logits| per backend
    artifacts: str = "artifacts"  # made absolute at construction: workers run in a private folder
    dataset: str | None = None  # which trained models to use; None: the best dataset present
    data_dir: str | None = None  # likewise absolute; None: the default data folder
    contention_limit: float = CONTENDED_CORES  # cores used by other processes above which a row is flagged as contended
    cores: int = field(default_factory=physical_cores)
    wait_policy: str = "auto"  # idle threads: "auto" (spin when the machine is quiet), "spin" or "passive"

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - frozen dataclass
        set_("artifacts", str(user_path(self.artifacts, "artifacts", folder=True)))  # Python callers' boundary
        if self.data_dir is not None:
            set_("data_dir", str(user_path(self.data_dir, "data_dir", folder=True)))
        set_("variants", tuple(spec.name for spec in resolve_variants(list(self.variants))))
        set_("backends", tuple(b.name for b in resolve_backends(list(self.backends) or ["all"])))
        if not self.devices:
            raise ConfigError(f"--device: give at least one of {', '.join(DEVICES)}")
        set_("devices", tuple(dict.fromkeys(check_device(d) for d in self.devices)))
        set_("batch_sizes", validate_batch_sizes(list(self.batch_sizes)))
        if self.threads is not None and (isinstance(self.threads, bool) or not 1 <= self.threads <= MAX_THREADS):
            raise ConfigError(f"--threads must be an integer from 1 to {MAX_THREADS}, got {self.threads}")
        for name in ("min_time_s", "warmup_s", "stability", "spread_limit", "contention_limit"):
            if not 0 < getattr(self, name) < 1e6:  # NaN and inf fail too: a row that never ends is no setting
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_time_s is None:
            set_("max_time_s", 4 * self.min_time_s)
        elif self.max_time_s < self.min_time_s:
            raise ConfigError(f"max_time_s ({self.max_time_s}) must be >= min_time_s ({self.min_time_s})")
        if self.warmup_rounds < 1:
            raise ConfigError(f"warmup_rounds must be >= 1, got {self.warmup_rounds}")
        if not 0 <= self.accuracy_tolerance <= 100:  # NaN fails: it would recommend nothing
            raise ConfigError(f"--accuracy-tolerance must be from 0 to 100 points, got {self.accuracy_tolerance}")
        if self.cores < 1:
            raise ConfigError(f"cores must be >= 1, got {self.cores}")
        check_policy(self.wait_policy)

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

    def as_dict(self) -> dict:
        return asdict(self)
