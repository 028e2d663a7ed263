"""The regression gate: per-row change of median latency against a saved run."""

from __future__ import annotations

from dataclasses import dataclass

from fnnkit.bench.results import BenchRow, BenchRun
from fnnkit.errors import ConfigError

Key = tuple[str, str, str, int]  # variant, backend, device, batch size


@dataclass(frozen=True)
class Change:
    variant: str
    backend: str
    device: str
    batch_size: int
    baseline_p50_us: float
    current_p50_us: float
    change_pct: float  # positive: slower than the baseline
    regression: bool
    trusted: bool  # both measurements steady (stable, narrow, uncontended)


@dataclass(frozen=True)
class Comparison:
    threshold_pct: float
    changes: list[Change]
    only_current: list[Key]
    only_baseline: list[Key]
    notes: list[str]  # differences in machine or software that make the comparison weaker

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regression]


def compare_runs(current: BenchRun, baseline: BenchRun, threshold_pct: float) -> Comparison:
    """Match rows by (variant, backend, device, batch size); slower by more than the threshold is a regression."""
    if not threshold_pct > 0:
        raise ConfigError(f"--fail-threshold must be a positive percentage, got {threshold_pct}")
    before: dict[Key, BenchRow] = {r.key: r for r in baseline.rows}
    now: dict[Key, BenchRow] = {r.key: r for r in current.rows}
    changes = []
    for key, row in now.items():
        old = before.get(key)
        if old is None:
            continue
        was, now_us = old.latency.p50_us, row.latency.p50_us  # > 0: the row's model says so
        pct = 100.0 * (now_us - was) / was
        changes.append(
            Change(*key, was, now_us, round(pct, 2), pct > threshold_pct, row.trust.steady and old.trust.steady)
        )
    return Comparison(
        threshold_pct=threshold_pct,
        changes=changes,
        only_current=[k for k in now if k not in before],
        only_baseline=[k for k in before if k not in now],
        notes=_environment_notes(current, baseline),
    )


def _environment_notes(current: BenchRun, baseline: BenchRun) -> list[str]:
    notes = []
    a, b = baseline.header.environment, current.header.environment
    for field in ("cpu", "cores", "gpu"):
        if a.get(field) != b.get(field):
            notes.append(f"{field} differs: baseline {a.get(field)!r}, now {b.get(field)!r}")
    va, vb = a.get("versions", {}), b.get("versions", {})
    for name in sorted(set(va) | set(vb)):
        if va.get(name) != vb.get(name):
            notes.append(f"{name} differs: baseline {va.get(name)}, now {vb.get(name)}")
    if baseline.threads.get("policy") != current.threads.get("policy"):
        notes.append(
            f"thread policy differs: baseline {baseline.threads.get('policy')}, now {current.threads.get('policy')}"
        )
    return notes
