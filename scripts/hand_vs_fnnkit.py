"""fnnkit bench against the same runtime used by hand, with the best thread settings, at large batches.

Usage: python scripts/hand_vs_fnnkit.py [--artifacts artifacts] [--variants A,E] [--rounds 2]
       [--backends eager,eager-bf16,onnxruntime,onnxruntime-int8,openvino]

For each round (interleaved, so a machine that gets busier hurts both sides alike):
1. "by hand": a fresh process per (variant, runtime, batch) that loads the file with plain
   torch / onnxruntime / openvino calls, all cores, idle threads spinning (OMP_WAIT_POLICY=ACTIVE;
   ORT ``allow_spinning`` 1; OpenVINO LATENCY hint, its own threading), and reports the median
   of timed calls;
2. ``fnnkit bench --backend <the same> --batch-sizes 1024,8192`` (wait policy auto).
Prints the ratio fnnkit p50 / hand p50 per row (1.00 = as fast as by hand) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BATCHES = (1024, 8192)
BACKENDS = "eager,eager-bf16,onnxruntime,onnxruntime-int8,openvino"
HAND = r"""
import json, os, sys, time
import numpy as np
kind, folder, batch, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
x = np.random.default_rng(0).random((batch, 784), dtype=np.float32)
if kind in ("eager", "eager-bf16"):
    import torch
    from safetensors.torch import load_file
    torch.set_num_threads(threads)
    state = load_file(os.path.join(folder, "model.safetensors"))
    layers = sorted({k.rsplit(".", 1)[0] for k in state})
    card = json.load(open(os.path.join(folder, "model.json")))
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[card["variant"]["activation"]]
    dtype = torch.bfloat16 if kind == "eager-bf16" else torch.float32
    weights = [(state[l + ".weight"].to(dtype), state[l + ".bias"].to(dtype)) for l in layers]
    xt = torch.from_numpy(x).to(dtype)
    def call():
        with torch.inference_mode():
            h = xt
            for i, (w, b) in enumerate(weights):
                h = torch.addmm(b, h, w.t())
                if i < len(weights) - 1:
                    h = act(h)
            return h
elif kind == "openvino":
    import openvino as ov
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
    request = core.compile_model(os.path.join(folder, "model.onnx"), "CPU", config).create_infer_request()
    def call():
        return request.infer({0: x}, share_inputs=True, share_outputs=True)
else:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "1")
    name = "model.int8.onnx" if kind == "onnxruntime-int8" else "model.onnx"
    s = ort.InferenceSession(os.path.join(folder, name), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    def call():
        return s.run(None, {name: x})
for _ in range(20):
    call()
times = []
deadline = time.perf_counter() + 1.0
while time.perf_counter() < deadline or len(times) < 30:
    t = time.perf_counter_ns(); call(); times.append(time.perf_counter_ns() - t)
print(json.dumps({"p50_us": sorted(times)[len(times) // 2] / 1e3}))
"""


def hand(kind: str, folder: Path, batch: int, threads: int) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, "-c", HAND, kind, str(folder), str(batch), str(threads)],
        env=env, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])["p50_us"]


def fnnkit_rows(artifacts: Path, variants: str, backends: str, out: Path) -> dict[tuple[str, str, int], dict]:
    fnnkit = Path(sys.executable).with_name("fnnkit")
    subprocess.run(
        [str(fnnkit), "bench", "--variant", variants, "--backend", backends, "--device", "cpu",
         "--batch-sizes", ",".join(map(str, BATCHES)), "--artifacts", str(artifacts), "--json", str(out)],
        check=True, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    return {(r["variant"], r["backend"], r["batch_size"]): r for r in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--variants", default="A,E")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backends", default=BACKENDS)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    artifacts = Path(args.artifacts).resolve()
    threads = len(os.sched_getaffinity(0))
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for variant in args.variants.split(","):
                folder = artifacts / args.dataset / variant
                for backend in args.backends.split(","):
                    for batch in BATCHES:
                        key = f"{variant} {backend} b{batch}"
                        results.setdefault(key, {"hand": [], "fnnkit": [], "wait": []})
                        results[key]["hand"].append(hand(backend, folder, batch, threads))
            rows = fnnkit_rows(artifacts, args.variants, args.backends, Path(tmp) / f"round{rnd}.json")
            for (variant, backend, batch), row in rows.items():
                key = f"{variant} {backend} b{batch}"
                results[key]["fnnkit"].append(row["latency"]["p50_us"])
                results[key]["wait"].append(row.get("wait_policy", ""))
    print(f"{'row':<24}{'hand p50 µs':>14}{'fnnkit p50 µs':>16}{'fnnkit/hand':>13}  fnnkit wait")
    for key, r in results.items():
        h, f = statistics.median(r["hand"]), statistics.median(r["fnnkit"])
        r["ratio"] = round(f / h, 3)
        print(f"{key:<24}{h:>14.1f}{f:>16.1f}{r['ratio']:>13.2f}  {','.join(r['wait'])}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": threads, "rounds": args.rounds, "rows": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
