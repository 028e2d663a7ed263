"""A whole benchmark run: check artifacts, measure the ceiling, measure every backend, compare them.

Each (variant, backend, device) is measured by ``fnnkit.bench.measure`` in a fresh worker
process (or in this process, for tests); rows come back, and only here are they compared
with each other: speed-up against eager, share of the matmul ceiling, flags, and the
recommendation per batch size.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import fnnkit.errors as errors
from fnnkit.backends import get_backend
from fnnkit.bench.config import BenchConfig
from fnnkit.bench.measure import Job, Outcome, ceiling_precisions, hold_freed_memory, measure, precision_ceilings
from fnnkit.bench.results import BenchRow, BenchRun, Ceiling, Recommendation, Skipped
from fnnkit.errors import ArtifactError, FnnkitError
from fnnkit.spawn import python_module_argv, run_isolated
from fnnkit.store import read_json

# (finished jobs, all jobs, what is being measured now)
ProgressFn = Callable[[int, int, str], None]
CEILING_TIME_S = 1.0  # best of ~10-25 large matmuls: one slow moment must not lower the ceiling
WORKER_TIMEOUT_S = 1800  # a cold torch.compile / TensorRT build on a slow machine, with margin


def variant_dirs(config: BenchConfig) -> dict[str, Path]:
    from fnnkit.store import find_variant_dir

    return {v: find_variant_dir(config.artifacts, v, config.dataset) for v in config.variants}


def missing_artifacts(config: BenchConfig) -> list[str]:
    """What the selected backends need and do not find, as the few commands that make it all."""
    from fnnkit.backends import export_command, is_exported
    from fnnkit.store import MODEL_CARD, find_variant_dir

    untrained: list[str] = []
    exports: dict[tuple[str, str], tuple[list[str], list[str]]] = {}  # (dataset, device) -> (variants, formats)
    for variant in config.variants:
        try:
            folder = find_variant_dir(config.artifacts, variant, config.dataset)
        except ArtifactError:
            folder = None
        if folder is None or not (folder / MODEL_CARD).exists():
            untrained.append(variant)
            continue
        for device in config.devices:
            for name in config.backends:
                backend = get_backend(name)
                fmt = backend.export_format
                if fmt and backend.available(device)[0] and not is_exported(folder, fmt, device):
                    variants, formats = exports.setdefault((folder.parent.name, device), ([], []))
                    variants += [variant] if variant not in variants else []
                    formats += [fmt] if fmt not in formats else []
    lines = []
    if untrained:
        names = ",".join(untrained)
        lines.append(
            f"not trained: {names}: fnnkit train --variant {names} --artifacts {config.artifacts}, "
            f"then fnnkit export --format all --variant {names} --artifacts {config.artifacts}"
        )
    for (dataset, device), (variants, formats) in exports.items():
        command = export_command(Path(config.artifacts), dataset, variants, formats, device)
        lines.append(f"not exported for {device}: {command}")
    return lines


def run_bench(config: BenchConfig, on_progress: ProgressFn | None = None) -> BenchRun:
    """Measure everything ``config`` selects; refuses to start when artifacts are missing."""
    from fnnkit.env import environment

    missing = missing_artifacts(config)
    if missing:
        raise ArtifactError(
            "missing artifacts:\n  " + "\n  ".join(missing) + "\nor run `fnnkit bench --prepare` to train on the "
            "bundled sample and export them now"
        )
    folders = variant_dirs(config)
    notify = on_progress or (lambda done, total, what: None)
    ceilings = measure_ceilings(config)

    pairs = [(v, d, b) for v in config.variants for d in config.devices for b in config.backends]
    rows: list[BenchRow] = []
    skipped: list[Skipped] = []
    for done, (variant, device, name) in enumerate(pairs):
        ok, reason = get_backend(name).available(device)
        if not ok:
            skipped.append(Skipped(variant, name, device, reason))
            continue
        notify(done, len(pairs), f"{variant} {name} {device}")
        outcome = _run_job(make_job(config, folders[variant], name, device), config.isolate)
        if outcome.status == "unavailable":
            skipped.append(Skipped(variant, name, device, outcome.reason))
        else:
            rows += outcome.rows
    notify(len(pairs), len(pairs), "done")

    rows = annotate(rows, ceilings, config)
    return BenchRun(
        run_id=time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        config=config.as_dict(),
        environment=environment(),
        threads=thread_record(config),
        isolation="subprocess" if config.isolate else "in-process",
        ceilings=ceilings,
        rows=rows,
        skipped=skipped,
        recommendations=recommend(rows, config.accuracy_tolerance),
    )


def make_job(config: BenchConfig, folder: Path, backend: str, device: str) -> Job:
    return Job(
        variant_dir=str(folder),
        backend=backend,
        device=device,
        batch_threads=[(b, config.threads_for(b)) for b in config.batch_sizes],
        min_time_s=config.min_time_s,
        max_time_s=config.max_time_s,
        warmup_rounds=config.warmup_rounds,
        warmup_s=config.warmup_s,
        stability=config.stability,
        accuracy=config.accuracy,
        data_dir=config.data_dir,
    )


def thread_record(config: BenchConfig) -> dict:
    return {
        "policy": config.thread_policy,
        "per_batch_size": {str(b): config.threads_for(b) for b in config.batch_sizes},
        "torch": "torch.set_num_threads(threads) before loading and timing; OMP_WAIT_POLICY="
        + os.environ.get("OMP_WAIT_POLICY", "PASSIVE" if config.isolate else "(unset: OpenMP default)"),
        "onnxruntime": "intra_op_num_threads=threads, inter_op_num_threads=1, intra/inter-op spinning off, "
        "graph optimisation ORT_ENABLE_ALL, sequential execution, IOBinding with pre-allocated outputs",
        "allocator": hold_freed_memory(),  # what every measuring process (worker or this one) sets
    }


def measure_ceilings(config: BenchConfig) -> list[Ceiling]:
    """One matmul ceiling per device and thread count the run uses, measured before any backend."""
    ceilings = []
    for device in config.devices:
        if device == "cuda" and not _cuda_ready():
            continue
        for threads in sorted({config.threads_for(b) for b in config.batch_sizes}):
            ceilings += precision_ceilings(threads, device, ceiling_precisions(config.backends), CEILING_TIME_S)
    return ceilings


def _cuda_ready() -> bool:
    import torch

    return torch.cuda.is_available()


# --------------------------------------------------------------------------- running one job


def _run_job(job: Job, isolate: bool) -> Outcome:
    outcome = _run_in_worker(job) if isolate else measure(job)
    if outcome.status == "error":
        kind = getattr(errors, outcome.error_type, None)
        if isinstance(kind, type) and issubclass(kind, FnnkitError):
            raise kind(outcome.reason)
        raise FnnkitError(f"measuring {job.backend} on {job.device} ({job.variant_dir}) failed: {outcome.reason}")
    return outcome


def _run_in_worker(job: Job) -> Outcome:
    # torch's OpenMP threads sleep when idle, as ONNX Runtime's do with spinning off: spinning threads
    # on a shared 2-core machine made 2-thread eager calls 10-100x slower in our measurements
    defaults = {"OMP_WAIT_POLICY": "PASSIVE"}
    with tempfile.TemporaryDirectory(prefix="fnnkit-bench-") as tmp:
        job_path, out_path = Path(tmp) / "job.json", Path(tmp) / "outcome.json"
        job_path.write_text(json.dumps(job.as_dict()))
        argv = python_module_argv("fnnkit.bench.worker", str(job_path), str(out_path))
        try:
            proc = run_isolated(argv, timeout=WORKER_TIMEOUT_S, env_defaults=defaults, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise FnnkitError(
                f"measuring {job.backend} on {job.device} took over {WORKER_TIMEOUT_S} s; stopped"
            ) from None
        if not out_path.exists():
            tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
            raise FnnkitError(
                f"the worker measuring {job.backend} on {job.device} died (exit {proc.returncode}) "
                f"without a result:\n{tail}"
            )
        return Outcome.from_dict(read_json(out_path, what="worker outcome"))


# --------------------------------------------------------------------------- comparing rows


def annotate(rows: list[BenchRow], ceilings: list[Ceiling], config: BenchConfig) -> list[BenchRow]:
    """Flags and ratios that need more than one row: speed-up vs eager, share of the ceiling."""
    eager = {(r.variant, r.device, r.batch_size): r.p50_us for r in rows if r.backend == "eager"}
    best = {(c.device, c.threads, c.precision): c.gflops for c in ceilings}
    out = []
    for row in rows:
        reference = eager.get((row.variant, row.device, row.batch_size))
        ceiling = best.get((row.device, row.threads, row.precision))  # its own precision's, never another's
        out.append(
            replace(
                row,
                speedup_vs_eager=round(reference / row.p50_us, 4) if reference else None,
                ceiling_share=round(row.gflops / ceiling, 4) if ceiling else None,
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
