"""A whole latency run: plan it, measure the ceiling, measure every backend, compare them.

Each (variant, backend, device) becomes a ``Job``, run by a launcher (``launch.WorkerProcess``,
or ``launch.InProcess``) that calls ``measure.measure``; rows come back, and only here are they compared
with each other: speed-up against eager, share of the matmul ceiling, and the
recommendation per batch size.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from fnnkit.bench.ceiling import measure_ceilings
from fnnkit.bench.config import BenchConfig
from fnnkit.bench.job import Job
from fnnkit.bench.launch import Launcher, WorkerProcess
from fnnkit.bench.measure import hold_freed_memory
from fnnkit.bench.planner import nothing_to_run, plan
from fnnkit.bench.records import RunHeader
from fnnkit.bench.results import SCHEMA, BenchRow, BenchRun, Ceiling, Recommendation, Skipped, Versus
from fnnkit.bench.waiting import choose
from fnnkit.errors import FnnkitError

PREPARE_HINT = "\nor run `fnnkit bench --prepare` to train on the bundled sample and export what is missing"
# (finished jobs, all jobs, what is being measured now)
ProgressFn = Callable[[int, int, str], None]


def run_bench(
    config: BenchConfig, on_progress: ProgressFn | None = None, *, launcher: Launcher | None = None
) -> BenchRun:
    """Measure everything ``config`` selects, each job through ``launcher`` (default: a worker process each).

    Backend, scenario (``config``) and launcher are independent choices. What cannot run here is
    skipped with its reason (``plan``); a job that fails stops the run with its message.
    """
    launcher = launcher or WorkerProcess()
    targets, skipped = plan(config.artifacts, config.variants, config.dataset, config.backends, config.devices)
    if not targets:
        nothing_to_run(skipped, PREPARE_HINT if any(s.missing for s in skipped) else "")
    notify = on_progress or (lambda done, total, what: None)
    running = {(t.backend.name, t.device) for t in targets}
    usable = {(b, d): ((b, d) in running, "") for b in config.backends for d in config.devices}
    ceiling_rates: dict = {}
    measure_ceilings(config, ceiling_rates, usable)  # first half of the repetitions; the second half after the backends

    rows: list[BenchRow] = []
    waits: list[str] = []
    for done, t in enumerate(targets):
        notify(done, len(targets), f"{t.variant} {t.backend.name} {t.device}")
        wait = choose(config.wait_policy)  # auto: a probe of the machine just before this job
        waits.append(wait)
        outcome = launcher.run(Job.of(config, t.folder, t.backend.name, t.device, wait))
        if outcome.status == "error":
            raise FnnkitError(f"measuring {t.backend.name} on {t.device} ({t.folder}) failed: {outcome.message}")
        if outcome.status == "unavailable":
            skipped.append(Skipped(variant=t.variant, backend=t.backend.name, device=t.device, reason=outcome.message))
        rows += outcome.rows
    ceilings = measure_ceilings(config, ceiling_rates, usable)
    notify(len(targets), len(targets), "done")

    rows = annotate(rows, ceilings)
    return BenchRun(
        header=RunHeader.new(SCHEMA, "latency", config),
        threads=thread_record(config, launcher, waits),
        isolation=launcher.name,
        ceilings=ceilings,
        rows=rows,
        skipped=skipped,
        recommendations=recommend(rows, config.accuracy_tolerance),
    )


def thread_record(config: BenchConfig, launcher: Launcher, waits: list[str] | None = None) -> dict:
    in_process = os.environ.get("OMP_WAIT_POLICY", "(unset: OpenMP default)")
    return {
        "policy": config.thread_policy,
        "per_batch_size": {str(b): config.threads_for(b) for b in config.batch_sizes},
        "wait_policy": f"{config.wait_policy} (jobs: {', '.join(waits or []) or 'none'}); each row's wait_policy "
        "says how its threads waited",
        "torch": "torch.set_num_threads(threads) before loading and timing; OMP_WAIT_POLICY "
        + (
            "ACTIVE for a spin job of a torch backend, PASSIVE otherwise (unless set in the environment)"
            if isinstance(launcher, WorkerProcess)
            else f"of this process: {in_process}"
        ),
        "onnxruntime": "intra_op_num_threads=threads, inter_op_num_threads=1, intra/inter-op spinning on for a spin "
        "job and off for a passive one, graph optimisation ORT_ENABLE_ALL, sequential execution, IOBinding with "
        "pre-allocated outputs",
        "allocator": hold_freed_memory(),  # what every measuring process (worker or this one) sets
    }


# --------------------------------------------------------------------------- comparing rows


def annotate(rows: list[BenchRow], ceilings: list[Ceiling]) -> list[BenchRow]:
    """Each row's ``versus``, once every row is in: speed-up vs eager, share of its own precision's ceiling."""
    eager = {(r.variant, r.device, r.batch_size): r.latency.p50_us for r in rows if r.backend == "eager"}
    best = {(c.device, c.threads, c.precision): c.gflops for c in ceilings}
    out = []
    for row in rows:
        reference = eager.get((row.variant, row.device, row.batch_size))
        ceiling = best.get((row.device, row.threads, row.precision))  # its own precision's, never another's
        share = round(row.gflops / ceiling, 4) if ceiling else None
        versus = Versus(
            speedup_vs_eager=round(reference / row.latency.p50_us, 4) if reference else None,
            ceiling_share=share if share is None or share <= 1.0 else None,  # above 100% is never a share
            ceiling_suspect=share is not None and share > 1.0,  # no kernel beats the machine: a mis-measure
        )
        out.append(row.model_copy(update={"versus": versus}))
    return out


def accuracy_matches(row: BenchRow, tolerance_points: float) -> bool:
    """Within its backend's tolerance of eager's logits, and within ``tolerance_points`` of eager's accuracy."""
    p = row.parity
    return p is not None and p.agrees and abs(p.accuracy - p.eager_accuracy) <= tolerance_points + 1e-9


def recommend(rows: list[BenchRow], tolerance_points: float = 0.0) -> list[Recommendation]:
    """Per variant, device and batch size: the fastest backend whose accuracy matches eager."""
    groups: dict[tuple[str, str, int], list[BenchRow]] = {}
    for row in rows:
        groups.setdefault((row.variant, row.device, row.batch_size), []).append(row)
    out = []
    for (variant, device, batch), group in groups.items():
        ranked = sorted((r for r in group if accuracy_matches(r, tolerance_points)), key=lambda r: r.latency.p50_us)
        best = ranked[0] if ranked else None
        out.append(
            Recommendation(
                variant=variant,
                device=device,
                batch_size=batch,
                backend=best.backend if best else None,
                p50_us=best.latency.p50_us if best else None,
                throughput=best.throughput if best else None,
                speedup_vs_eager=best.versus.speedup_vs_eager if best and best.versus else None,
                runner_up=ranked[1].backend if len(ranked) > 1 else None,
            )
        )
    return out
