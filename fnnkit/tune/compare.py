"""A tune against an earlier one: each backend's peak at the bound then and now, the pick's, and why the two
may not be comparable (another model, bound or machine, or other processes busy in either run)."""

from __future__ import annotations

from dataclasses import dataclass

from fnnkit.tune.record import Trial, TuneRecord

BUSY_CORES = 0.5  # other processes kept more than this many cores busy: the peaks are lower than on a quiet machine


@dataclass(frozen=True)
class Change:
    """One row: a backend's best measured deployment (or the pick) in each run; None where it was not measured."""

    label: str  # the backend's name, or "pick"
    earlier: Trial | None
    now: Trial | None

    @property
    def change_pct(self) -> float | None:
        """Now against earlier, in percent of the earlier peak; + is faster. None across run lengths: 2 s runs
        meet a p99 more easily than 5 s ones, so a short figure against a full one measures the runs, not a change."""
        if self.earlier is None or self.now is None or not self.earlier.peak_qps or self.now.peak_qps is None:
            return None
        if self.earlier.fidelity != self.now.fidelity:
            return None
        return 100.0 * (self.now.peak_qps / self.earlier.peak_qps - 1)


@dataclass(frozen=True)
class TuneComparison:
    changes: list[Change]  # the pick first, then every backend either run timed
    pick_changed: bool  # another deployment (backend or batching) was picked, or only one run picked any
    incomparable: list[str]  # why the peaks do not measure the same thing: read the % as a hint at most
    notes: list[str]  # differences that may explain a change without invalidating it


def best_per_backend(record: TuneRecord) -> dict[str, Trial]:
    """Each backend's best peak at the bound: full-length measurements first, as the pick is chosen."""
    best: dict[str, Trial] = {}
    for trial in record.trials:
        if trial.peak_qps is None:
            continue
        known = best.get(trial.deployment.backend)
        if known is None or _rank(trial) > _rank(known):
            best[trial.deployment.backend] = trial
    return best


def _rank(trial: Trial) -> tuple[bool, float]:
    return trial.fidelity == "full", trial.peak_qps or 0.0


def compare_tunes(now: TuneRecord, earlier: TuneRecord) -> TuneComparison:
    before, after = best_per_backend(earlier), best_per_backend(now)
    backends = sorted(set(before) | set(after), key=lambda b: -(after.get(b) or before[b]).peak_qps)
    changes = [Change("pick", earlier.pick, now.pick)]
    changes += [Change(b, before.get(b), after.get(b)) for b in backends]
    picked = (earlier.pick.deployment if earlier.pick else None, now.pick.deployment if now.pick else None)
    return TuneComparison(changes, picked[0] != picked[1], _incomparable(now, earlier), _notes(now, earlier))


def _incomparable(now: TuneRecord, earlier: TuneRecord) -> list[str]:
    reasons = []
    if (now.dataset, now.variant) != (earlier.dataset, earlier.variant):
        reasons.append(f"another model: earlier {earlier.dataset}/{earlier.variant}, now {now.dataset}/{now.variant}")
    if now.config.latency_bound_ms != earlier.config.latency_bound_ms:
        reasons.append(
            f"another latency bound: earlier p99 <= {earlier.config.latency_bound_ms:g} ms, "
            f"now {now.config.latency_bound_ms:g} ms"
        )
    if now.config.device != earlier.config.device:
        reasons.append(f"another device: earlier {earlier.config.device}, now {now.config.device}")
    cpu_then, cpu_now = str(earlier.environment.get("cpu"))[:80], str(now.environment.get("cpu"))[:80]
    if cpu_then != cpu_now:
        reasons.append(f"another CPU: earlier {cpu_then!r}, now {cpu_now!r}")
    if now.machine.cores != earlier.machine.cores:
        reasons.append(f"another core count: earlier {earlier.machine.cores}, now {now.machine.cores}")
    lost, gained = (
        set(earlier.machine.flags) - set(now.machine.flags),
        set(now.machine.flags) - set(earlier.machine.flags),
    )
    if lost or gained:
        flags = [f"only earlier: {', '.join(sorted(lost))}"] * bool(lost) + [
            f"only now: {', '.join(sorted(gained))}"
        ] * bool(gained)
        reasons.append(f"other instruction sets ({'; '.join(flags)})")
    for run, record in (("the earlier run", earlier), ("this run", now)):
        if record.machine.others_cores_max > BUSY_CORES:
            reasons.append(f"other processes kept up to {record.machine.others_cores_max:.1f} cores busy during {run}")
    return reasons


def _notes(now: TuneRecord, earlier: TuneRecord) -> list[str]:
    notes = []
    a, b = earlier.config, now.config
    for field, flag in (("min_accuracy", "--min-accuracy"), ("budget_s", "--budget-s"), ("threads", "threads")):
        if getattr(a, field) != getattr(b, field):
            notes.append(f"{flag} differs: earlier {getattr(a, field)}, now {getattr(b, field)}")
    if earlier.pick and now.pick and earlier.pick.fidelity != now.pick.fidelity:
        notes.append(
            f"the picks were measured with runs of different length (earlier {earlier.pick.fidelity}, now "
            f"{now.pick.fidelity}): no change is claimed for them"
        )
    if set(earlier.accuracy) != set(now.accuracy):
        notes.append("the backends considered differ (--backends, or what this machine runs)")
    va, vb = earlier.environment.get("versions"), now.environment.get("versions")
    va, vb = (va if isinstance(va, dict) else {}), (vb if isinstance(vb, dict) else {})
    for name in sorted(set(va) | set(vb), key=str)[:64]:
        if va.get(name) != vb.get(name):
            notes.append(f"{str(name)[:40]} differs: earlier {str(va.get(name))[:40]}, now {str(vb.get(name))[:40]}")
    return notes
