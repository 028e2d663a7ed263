"""How idle intra-op threads wait between calls: spinning on a quiet machine, sleeping on a busy one.

Spinning threads answer the next call at once; sleeping ones must be woken. Measured on a
quiet 2-core machine, waiting passively made torch backends 1.5-3.4x slower than the same
runtime used by hand at batch 1024 (and ONNX Runtime int8 1.6x); on a busy one, spinning
threads fought the other process for the cores and a 0.38 ms call took 22 ms. Neither is
right everywhere, so each benchmark job probes the machine just before it starts: when
other processes keep fewer than ``CONTENDED_CORES`` busy, its threads spin; otherwise they
sleep. The choice is recorded in every row (``wait_policy``), and a row measured while the
machine became busy is flagged ``contended`` as before.

The switches: OpenMP's ``OMP_WAIT_POLICY`` (ACTIVE / PASSIVE, read when the worker process
starts: torch backends) and ONNX Runtime's ``session.intra_op.allow_spinning``. OpenVINO has
no such switch (its runtime decides); its rows say so.
"""

from __future__ import annotations

import time

from fnnkit.bench.stats import CONTENDED_CORES, CpuLoad
from fnnkit.errors import unknown_choice

POLICIES = ("auto", "spin", "passive")
OMP = {"spin": "ACTIVE", "passive": "PASSIVE"}
PROBE_S = 0.3  # long enough to see a busy-looping neighbour, short beside a job's seconds


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise unknown_choice("wait policy", policy, POLICIES)
    return policy


def busy_elsewhere(seconds: float = PROBE_S) -> float:
    """Cores other processes keep busy now, measured over ``seconds`` while this process sleeps."""
    with CpuLoad() as load:
        time.sleep(seconds)
    return load.others_cores


def choose(policy: str, others_cores: float | None = None) -> str:
    """``spin`` or ``passive``: a fixed choice as given, or ``auto`` from a probe of the machine now."""
    if check_policy(policy) != "auto":
        return policy
    busy = busy_elsewhere() if others_cores is None else others_cores
    return "spin" if busy <= CONTENDED_CORES else "passive"
