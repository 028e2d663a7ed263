"""A/B of the batcher worker's per-thread OpenMP count: one LoadGen server run in this process.
usage: ab.py fix|nofix BACKEND QPS"""
import resource, sys, tempfile, time
from pathlib import Path
import numpy as np
from fnnkit.backends import get_backend
from fnnkit.bench.scenarios import sut
from fnnkit.bench.scenarios.config import ScenarioConfig
from fnnkit.bench.scenarios.loadgen import run_loadgen
from fnnkit.bench.scenarios.runs import warmed
mode, name, qps = sys.argv[1], sys.argv[2], float(sys.argv[3])
if mode == "nofix":
    sut.set_threads = lambda threads: None  # the worker thread keeps OpenMP's default count, as before f2d83cc
p = warmed(get_backend(name).load("artifacts/mnist/C", "cpu", 1), 64)
x = np.random.default_rng(0).random((1000, 784), dtype=np.float32)
cfg = ScenarioConfig(scenario="server", qps=qps, latency_bound_ms=2, min_duration_ms=5000)
r0 = resource.getrusage(resource.RUSAGE_SELF)
r = run_loadgen(p, x, cfg, Path(tempfile.mkdtemp()) / "log", qps=qps)
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(f"{mode:5} {name:12} {qps:>8,.0f} q/s {r.validity:7} p50 {r.latency_ns['50.00']/1e6:.3f} p99 {r.latency_ns['99.00']/1e6:7.3f} ms "
      f"batch {r.mean_batch:5.1f} involuntary switches {r1.ru_nivcsw - r0.ru_nivcsw} busy elsewhere {r.others_cores}")
