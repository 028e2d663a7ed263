"""fnnkit bench against the same runtime used by hand, with the best thread settings, at large batches.

Usage: python scripts/hand_vs_fnnkit.py [--artifacts artifacts] [--dataset mnist] [--variants A,E]
       [--rounds 3] [--backends eager,...] [--data-dir ~/.cache/fnnkit/data] [--json out.json]

Each round (interleaved, so a machine that gets busier hurts both sides alike):
1. "by hand": per (variant, runtime, thread setting) a fresh process that opens the same file with
   plain torch / onnxruntime / openvino calls on all cores, runs the same real test images (the
   dataset's IDX test file, rows repeated to the batch size), and reports the median of timed calls
   at each batch size. Every setting a user would try is tried, and the faster one counts:
   torch under ``OMP_WAIT_POLICY=ACTIVE`` and ``PASSIVE``; ONNX Runtime with ``allow_spinning`` 1
   and 0; OpenVINO (LATENCY hint, one stream, precision forced as fnnkit forces it) with CPU
   pinning on and off.
2. ``fnnkit bench --backend <the same> --batch-sizes 1024,8192`` (wait policy auto).
Prints, per row, every round's fnnkit p50 / hand p50 (1.00 = as fast as by hand; below 1 = faster)
and their median, and writes everything as JSON.
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
BACKENDS = (
    "eager,eager-bf16,compile,torchscript,aoti,onnxruntime,onnxruntime-int8,onnxruntime-int8-static,"
    "openvino,openvino-bf16,openvino-int8"
)
TORCH_KINDS = {"eager", "eager-bf16", "compile", "torchscript", "torchscript-lite", "aoti"}
SETTINGS = {"torch": ("ACTIVE", "PASSIVE"), "onnxruntime": ("1", "0"), "openvino": ("True", "False")}
HAND = r"""
import gzip, json, os, sys, time
import numpy as np
kind, folder, images, threads, setting = sys.argv[1:6]
batches, threads = [int(b) for b in sys.argv[6].split(",")], int(threads)
opener = gzip.open if images.endswith(".gz") else open
with opener(images, "rb") as f:
    pixels = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0
def batch_of(n):
    return np.ascontiguousarray(pixels[np.arange(n) % len(pixels)])
def file(name):
    return os.path.join(folder, name)
if kind in ("eager", "eager-bf16", "compile", "torchscript", "torchscript-lite", "aoti"):
    import torch
    from safetensors.torch import load_file
    torch.set_num_threads(threads)
    card = json.load(open(file("model.json")))
    act = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[card["variant"]["activation"]]
    state = load_file(file("model.safetensors"))
    names = sorted({k.rsplit(".", 1)[0] for k in state}, key=lambda n: int(n.split(".")[1]))
    layers = []
    for i, name in enumerate(names):
        linear = torch.nn.Linear(*state[name + ".weight"].shape[::-1])
        linear.load_state_dict({"weight": state[name + ".weight"], "bias": state[name + ".bias"]})
        layers += [linear] + ([act()] if i < len(names) - 1 else [])
    model = torch.nn.Sequential(*layers).eval()
    dtype = torch.bfloat16 if kind == "eager-bf16" else torch.float32
    if kind == "eager-bf16":
        model = model.to(dtype)
    elif kind == "compile":
        import torch._inductor.config as inductor
        inductor.freezing = True
        model = torch.compile(model, dynamic=True)
    elif kind == "torchscript":
        model = torch.jit.freeze(torch.jit.load(file("model.torchscript.pt")).eval())
    elif kind == "torchscript-lite":
        from torch.jit.mobile import _load_for_lite_interpreter
        model = _load_for_lite_interpreter(file("model.ptl"))
    elif kind == "aoti":
        model = torch._inductor.aoti_load_package(file("model.pt2"))
    def caller(n):
        x = torch.from_numpy(batch_of(n)).to(dtype)
        def call():
            with torch.inference_mode():
                return model(x)
        return call
elif kind.startswith("openvino"):
    import openvino as ov
    name = "model.int8-static.onnx" if kind == "openvino-int8" else "model.onnx"
    config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": threads,
              "INFERENCE_PRECISION_HINT": "bf16" if kind == "openvino-bf16" else "f32",
              "ENABLE_CPU_PINNING": setting == "True"}
    compiled = ov.Core().compile_model(file(name), "CPU", config)
    def caller(n):
        x, request = batch_of(n), compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(x, shared_memory=True))
        return lambda: request.infer(share_outputs=True)
else:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", setting)
    name = {"onnxruntime": "model.onnx", "onnxruntime-int8": "model.int8.onnx"}.get(kind, "model.int8-static.onnx")
    session = ort.InferenceSession(file(name), so, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    def caller(n):
        x = batch_of(n)
        return lambda: session.run(None, {input_name: x})
out = {}
for n in batches:
    call = caller(n)
    for _ in range(20):
        call()
    times = []
    deadline = time.perf_counter() + 1.5
    while time.perf_counter() < deadline or len(times) < 30:
        t = time.perf_counter_ns(); call(); times.append(time.perf_counter_ns() - t)
    out[n] = float(np.median(times)) / 1e3
print(json.dumps(out))
"""


def family(kind: str) -> str:
    return "torch" if kind in TORCH_KINDS else ("openvino" if kind.startswith("openvino") else "onnxruntime")


def hand(kind: str, folder: Path, images: Path, threads: int) -> dict[int, dict[str, float]]:
    """p50 µs per batch size for each thread setting of ``kind``'s runtime, each in a fresh process."""
    by_batch: dict[int, dict[str, float]] = {b: {} for b in BATCHES}
    for setting in SETTINGS[family(kind)]:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        if family(kind) == "torch":
            env["OMP_WAIT_POLICY"] = setting
        out = subprocess.run(
            [sys.executable, "-c", HAND, kind, str(folder), str(images), str(threads), setting,
             ",".join(map(str, BATCHES))],
            env=env, capture_output=True, text=True, check=True, timeout=600,
        )  # fmt: skip
        for batch, p50 in json.loads(out.stdout.strip().splitlines()[-1]).items():
            by_batch[int(batch)][setting] = p50
    return by_batch


def fnnkit_rows(artifacts: Path, variants: str, backends: str, out: Path) -> dict[tuple[str, str, int], dict]:
    fnnkit = Path(sys.executable).with_name("fnnkit")
    subprocess.run(
        [str(fnnkit), "bench", "--variant", variants, "--backend", backends, "--device", "cpu",
         "--batch-sizes", ",".join(map(str, BATCHES)), "--artifacts", str(artifacts), "--json", str(out)],
        check=True, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    return {(r["variant"], r["backend"], r["batch_size"]): r for r in rows}


def test_images(data_dir: Path, dataset: str) -> Path:
    for name in ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"):
        if (data_dir / dataset / name).is_file():
            return data_dir / dataset / name
    sys.exit(f"no {dataset} test images in {data_dir / dataset}: run `fnnkit data fetch {dataset}` first")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=os.environ.get("FNNKIT_DATA", "~/.cache/fnnkit/data"))
    parser.add_argument("--variants", default="A,E")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default=BACKENDS)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    artifacts = Path(args.artifacts).resolve()
    images = test_images(Path(args.data_dir).expanduser(), args.dataset)
    threads = len(os.sched_getaffinity(0))
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for variant in args.variants.split(","):
                folder = artifacts / args.dataset / variant
                for backend in args.backends.split(","):
                    for batch, settings in hand(backend, folder, images, threads).items():
                        row = results.setdefault(f"{variant} {backend} b{batch}", {"hand": [], "fnnkit": []})
                        row["hand"].append(min(settings.values()))
                        row.setdefault("hand_settings", []).append(settings)
            rows = fnnkit_rows(artifacts, args.variants, args.backends, Path(tmp) / f"round{rnd}.json")
            for (variant, backend, batch), row in rows.items():
                key = f"{variant} {backend} b{batch}"
                results[key]["fnnkit"].append(row["latency"]["p50_us"])
                results[key].setdefault("wait", []).append(row.get("wait_policy", ""))
    header = f"{'row':<32}{'hand p50 µs':>13}{'fnnkit p50 µs':>15}  {'fnnkit/hand per round':<24}{'median':>7}"
    print(header + "  fnnkit wait")
    for key, r in results.items():
        ratios = [f / h for f, h in zip(r["fnnkit"], r["hand"], strict=False)]
        r["ratios"] = [round(x, 3) for x in ratios]
        r["ratio"] = round(statistics.median(ratios), 3) if ratios else None
        h, f = statistics.median(r["hand"]), statistics.median(r["fnnkit"]) if r["fnnkit"] else float("nan")
        shown = " ".join(f"{x:.2f}" for x in ratios)
        median = f"{r['ratio']:.2f}" if ratios else "-"
        print(f"{key:<32}{h:>13.1f}{f:>15.1f}  {shown:<24}{median:>7}  {','.join(sorted(set(r.get('wait', []))))}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": threads, "rounds": args.rounds, "rows": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
