"""A whole benchmark run: check artifacts, measure the ceiling, measure every backend, compare them.

Each (variant, backend, device) becomes a ``Job``, run by a launcher (``launch.WorkerProcess``,
or ``launch.InProcess``) that calls ``measure.measure``; rows come back, and only here are they compared
with each other: speed-up against eager, share of the matmul ceiling, flags, and the
recommendation per batch size.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from fnnkit.backends import Backend, resolve_backends
from fnnkit.bench.ceiling import measure_ceilings
from fnnkit.bench.config import BenchConfig
from fnnkit.bench.job import Job
from fnnkit.bench.launch import Launcher, WorkerProcess
from fnnkit.bench.measure import hold_freed_memory
from fnnkit.bench.results import BenchRow, BenchRun, Ceiling, Recommendation, Skipped
from fnnkit.bench.waiting import choose
from fnnkit.env import environment
from fnnkit.errors import ArtifactError, FnnkitError
from fnnkit.export.core import export_command, is_exported
from fnnkit.store import Artifact, find_variant_dir, train_command

# (finished jobs, all jobs, what is being measured now)
ProgressFn = Callable[[int, int, str], None]
Availability = dict[tuple[str, str], tuple[bool, str]]  # (backend, device) -> (runs here, what on / why not)


def run_bench(
    config: BenchConfig, on_progress: ProgressFn | None = None, *, launcher: Launcher | None = None
) -> BenchRun:
    """Measure everything ``config`` selects, each job through ``launcher`` (default: a worker process each).

    Backend, scenario (``config``) and launcher are independent choices. Refuses to start when
    artifacts are missing; a job that fails stops the run with its message.
    """
    launcher = launcher or WorkerProcess()
    backends = resolve_backends(list(config.backends))
    usable = availability(backends, config.devices)  # checked once per (backend, device), here
    missing = missing_artifacts(config, usable)
    if missing:
        raise ArtifactError(
            "missing artifacts:\n  " + "\n  ".join(missing) + "\nor run `fnnkit bench --prepare` to train on the "
            "bundled sample and export them now"
        )
    folders = {v: find_variant_dir(config.artifacts, v, config.dataset) for v in config.variants}
    notify = on_progress or (lambda done, total, what: None)
    ceiling_rates: dict = {}
    measure_ceilings(config, ceiling_rates, usable)  # first half of the repetitions; the second half after the backends

    pairs = [(v, d, b.name) for v in config.variants for d in config.devices for b in backends]
    rows: list[BenchRow] = []
    skipped: list[Skipped] = []
    waits: list[str] = []
    for done, (variant, device, name) in enumerate(pairs):
        ok, reason = usable[name, device]
        if not ok:
            skipped.append(Skipped(variant, name, device, reason))
            continue
        notify(done, len(pairs), f"{variant} {name} {device}")
        wait = choose(config.wait_policy)  # auto: a probe of the machine just before this job
        waits.append(wait)
        outcome = launcher.run(Job.of(config, folders[variant], name, device, wait))
        if outcome.status == "error":
            raise FnnkitError(f"measuring {name} on {device} ({folders[variant]}) failed: {outcome.message}")
        if outcome.status == "unavailable":
            skipped.append(Skipped(variant, name, device, outcome.message))
        rows += outcome.rows
    ceilings = measure_ceilings(config, ceiling_rates, usable)
    notify(len(pairs), len(pairs), "done")

    rows = annotate(rows, ceilings, config)
    return BenchRun(
        run_id=time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        config=config.as_dict(),
        environment=environment(),
        threads=thread_record(config, launcher, waits),
        isolation=launcher.name,
        ceilings=ceilings,
        rows=rows,
        skipped=skipped,
        recommendations=recommend(rows, config.accuracy_tolerance),
    )


def availability(backends: list[Backend], devices: tuple[str, ...]) -> Availability:
    return {(b.name, d): b.available(d) for b in backends for d in devices}


def missing_artifacts(config: BenchConfig, usable: Availability | None = None) -> list[str]:
    """What the selected backends need and do not find, as the few commands that make it all.

    ``usable``: availability already checked per (backend, device); checked here when not given.
    """
    backends = resolve_backends(list(config.backends))
    usable = usable if usable is not None else availability(backends, config.devices)
    untrained: list[str] = []
    exports: dict[tuple[str, str], tuple[list[str], list[str]]] = {}  # (dataset, device) -> (variants, formats)
    for variant in config.variants:
        artifact = Artifact.lookup(config.artifacts, variant, config.dataset)
        if artifact is None:
            untrained.append(variant)
            continue
        for device in config.devices:
            for backend in backends:
                fmt = backend.export_format
                if fmt and usable[backend.name, device][0] and not is_exported(artifact.folder, fmt, device):
                    variants, formats = exports.setdefault((artifact.dataset, device), ([], []))
                    variants += [variant] if variant not in variants else []
                    formats += [fmt] if fmt not in formats else []
    lines = []
    if untrained:
        names = ",".join(untrained)
        lines.append(
            f"not trained: {names}: {train_command(config.artifacts, names, config.dataset)}, "
            f"then fnnkit export --format all --variant {names} --artifacts {config.artifacts}"
        )
    for (dataset, device), (variants, formats) in exports.items():
        command = export_command(Path(config.artifacts), dataset, variants, formats, device)
        lines.append(f"not exported for {device}: {command}")
    return lines


def thread_record(config: BenchConfig, launcher: Launcher, waits: list[str] | None = None) -> dict:
    in_process = os.environ.get("OMP_WAIT_POLICY", "(unset: OpenMP default)")
    return {
        "policy": config.thread_policy,
        "per_batch_size": {str(b): config.threads_for(b) for b in config.batch_sizes},
        "wait_policy": f"{config.wait_policy} (jobs: {', '.join(waits or []) or 'none'}); each row's wait_policy "
        "says how its threads waited",
        "torch": "torch.set_num_threads(threads) before loading and timing; OMP_WAIT_POLICY "
        + (
            "ACTIVE for a spin job, PASSIVE for a passive one (unless set in the environment)"
            if isinstance(launcher, WorkerProcess)
            else f"of this process: {in_process}"
        ),
        "onnxruntime": "intra_op_num_threads=threads, inter_op_num_threads=1, intra/inter-op spinning on for a spin "
        "job and off for a passive one, graph optimisation ORT_ENABLE_ALL, sequential execution, IOBinding with "
        "pre-allocated outputs",
        "allocator": hold_freed_memory(),  # what every measuring process (worker or this one) sets
    }


# --------------------------------------------------------------------------- comparing rows


def annotate(rows: list[BenchRow], ceilings: list[Ceiling], config: BenchConfig) -> list[BenchRow]:
    """Flags and ratios that need more than one row: speed-up vs eager, share of the ceiling."""
    eager = {(r.variant, r.device, r.batch_size): r.p50_us for r in rows if r.backend == "eager"}
    best = {(c.device, c.threads, c.precision): c.gflops for c in ceilings}
    out = []
    for row in rows:
        reference = eager.get((row.variant, row.device, row.batch_size))
        ceiling = best.get((row.device, row.threads, row.precision))  # its own precision's, never another's
        share = round(row.gflops / ceiling, 4) if ceiling else None
        out.append(
            replace(
                row,
                speedup_vs_eager=round(reference / row.p50_us, 4) if reference else None,
                ceiling_share=share,
                ceiling_suspect=share is not None and share > 1.0,  # no kernel beats the machine: a mis-measure
                wide=row.spread > config.spread_limit,
                contended=row.others_cores > config.contention_limit,
            )
        )
    return out


def accuracy_matches(row: BenchRow, tolerance_points: float) -> bool:
    """Within its backend's tolerance of eager's logits, and within ``tolerance_points`` of eager's accuracy."""
    if row.agrees is not True or row.accuracy is None or row.eager_accuracy is None:
        return False
    return abs(row.accuracy - row.eager_accuracy) <= tolerance_points + 1e-9


def recommend(rows: list[BenchRow], tolerance_points: float = 0.0) -> list[Recommendation]:
    """Per variant, device and batch size: the fastest backend whose accuracy matches eager."""
    groups: dict[tuple[str, str, int], list[BenchRow]] = {}
    for row in rows:
        groups.setdefault((row.variant, row.device, row.batch_size), []).append(row)
    out = []
    for (variant, device, batch), group in groups.items():
        ranked = sorted((r for r in group if accuracy_matches(r, tolerance_points)), key=lambda r: r.p50_us)
        best = ranked[0] if ranked else None
        out.append(
            Recommendation(
                variant=variant,
                device=device,
                batch_size=batch,
                backend=best.backend if best else None,
                p50_us=best.p50_us if best else None,
                throughput=best.throughput if best else None,
                speedup_vs_eager=best.speedup_vs_eager if best else None,
                runner_up=ranked[1].backend if len(ranked) > 1 else None,
            )
        )
    return out
