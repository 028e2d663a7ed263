"""One plan for every kind of run (latency, load, cold start), with one missing-artifact policy.

``plan`` turns (variants, backends, devices) into ``Target``s that can run here and ``Skipped``
records for the rest: a backend that cannot run on this machine says why; a variant not trained,
or an export not made, says the exact command that makes it (``Backend.missing``). A run fails
only when nothing is left to run, with every reason in its one message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fnnkit.backends import Backend, get_backend
from fnnkit.bench.results import Skipped
from fnnkit.errors import ArtifactError, BackendUnavailable
from fnnkit.store import find_variant_dir, train_command


@dataclass(frozen=True)
class Target:
    """One thing to measure: a backend on a device for the trained variant in ``folder``."""

    variant: str
    folder: Path
    backend: Backend
    device: str


def plan(
    artifacts: str | Path, variants: tuple[str, ...], dataset: str | None, backends: tuple[str, ...],
    devices: tuple[str, ...],
) -> tuple[list[Target], list[Skipped]]:  # fmt: skip
    """Everything selected, split into what runs here and what is skipped (with why, or the command to run)."""
    targets: list[Target] = []
    skipped: list[Skipped] = []
    for variant in variants:
        try:
            folder = find_variant_dir(artifacts, variant, dataset)  # with a dataset: Backend.missing checks it
        except ArtifactError:  # trained under no dataset: every pair that could run here waits for one command
            train = f"not trained: {train_command(artifacts, variant)}"
            for device in devices:
                for name in backends:
                    ok, why = get_backend(name).available(device)
                    skipped.append(Skipped(variant=variant, backend=name, device=device, reason=train if ok else why,
                                           missing=ok))  # fmt: skip
            continue
        for device in devices:
            for name in backends:
                backend = get_backend(name)
                ok, why = backend.available(device)
                lacks = backend.missing(folder, device) if ok else None
                if ok and not lacks:
                    targets.append(Target(variant, folder, backend, device))
                    continue
                reason = lacks or why
                skipped.append(Skipped(variant=variant, backend=backend.name, device=device, reason=reason,
                                       missing=bool(lacks)))  # fmt: skip
    return targets, skipped


def nothing_to_run(skipped: list[Skipped], hint: str = "") -> None:
    """Raise when a plan left nothing to run: an ArtifactError when something is missing, else BackendUnavailable.

    One line per reason: a missing model or export names its command once, however many pairs wait for it."""
    by_reason: dict[str, list[str]] = {}
    for s in skipped:
        by_reason.setdefault(s.reason, []).append(f"{s.backend} on {s.device}")
    reasons = [
        reason if any(s.missing for s in skipped if s.reason == reason) else f"{', '.join(pairs)}: {reason}"
        for reason, pairs in by_reason.items()
    ] or ["nothing selected"]
    error = ArtifactError if any(s.missing for s in skipped) else BackendUnavailable
    raise error("nothing to run here:\n  " + "\n  ".join(reasons) + hint)
