"""Both serving engines and a bare Ray Serve deployment, measured in one run with one load client.

    python scripts/serve_engines.py --artifacts artifacts --seconds 5 --json serve-engines.json

1. The local engine (`fnnkit serve --workers N`): LoadGen's peak Poisson rate whose p99 stays within
   ``--local-bound-ms`` (10 ms).
2. A Ray head started here (`ray start --head --block`, its own temp folder and ports, stopped through
   the process this script started), holding two applications side by side:
   - the bare ceiling: a Ray Serve deployment with fnnkit's deployment options (``max_ongoing_requests``,
     health-check period, CPUs per replica) that receives the same JSON request, reads its body and
     answers a constant JSON of the size and shape of fnnkit's answer: everything Ray Serve must do
     for this request, and nothing of the model;
   - `fnnkit serve --address` (the Ray engine).
   Both are warmed up at a low rate first (a Ray cluster is slow for its first tens of seconds), then
   each one's peak rate within ``--ray-bound-ms`` is searched, and the ratio fnnkit / bare printed.

Requests are single MNIST test digits as JSON, the body `fnnkit serve-load` sends. Prints one line per
measurement and a summary; everything started here is stopped on the way out.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from fnnkit.data import load_dataset, preprocess
from fnnkit.serve.load import LoadTarget, find_peak_rate, run_server_load, sample_body

BARE = """
import json, sys, ray
from ray import serve
from starlette.responses import JSONResponse
ray.init(address=sys.argv[1], log_to_driver=False)
serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[2])})
ANSWER = json.loads(sys.argv[3])  # fnnkit's answer to the same request: the same bytes go back

@serve.deployment(max_ongoing_requests=512, health_check_period_s=2, ray_actor_options={"num_cpus": 0.5})
class Bare:
    async def __call__(self, request):
        await request.body()
        return JSONResponse(ANSWER)

serve.run(Bare.bind(), name="bare", route_prefix="/bare")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def peak(name: str, url: str, body: bytes, bound_ms: float, seconds: float, start_qps: float, record: dict) -> float:
    best, tried = find_peak_rate(LoadTarget.parse(url, body), bound_ms, seconds, 32, start_qps=start_qps)
    for step in tried:
        print(f"  {name}: {step.line()}", flush=True)
    rate = best.completed_qps if best.valid else 0.0
    print(f"{name}: peak {rate:,.0f} requests/s with p99 <= {bound_ms:g} ms (p99 {best.p99_ms} ms)", flush=True)
    record[name] = {"peak": rate, "bound_ms": bound_ms, "best": best.summary(), "steps": [t.summary() for t in tried]}
    return rate


def warm_up(name: str, url: str, body: bytes, bound_ms: float, seconds: float, qps: float) -> None:
    """A fixed low rate, not counted: the first tens of seconds of a fresh Ray cluster are slow for everyone."""
    result = run_server_load(LoadTarget.parse(url, body), qps, bound_ms, seconds, 32)
    print(f"  {name} (warm-up, not counted): {result.line()}", flush=True)


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--variant", default="C")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0, help="LoadGen's minimum duration per rate")
    parser.add_argument("--local-bound-ms", type=float, default=10.0)
    parser.add_argument("--ray-bound-ms", type=float, default=100.0)
    parser.add_argument("--json", type=Path, help="also write every LoadGen step here")
    args = parser.parse_args()
    fnnkit = str(Path(sys.executable).parent / "fnnkit")
    body = sample_body(preprocess(load_dataset("mnist-sample").test_x[:1]).numpy())
    prefix = f"/fnnkit_{args.dataset}_{args.variant}"
    common = ["--variant", args.variant, "--dataset", args.dataset, "--artifacts", args.artifacts]
    record: dict = {"seconds": args.seconds, "variant": args.variant, "workers": args.workers}

    port = free_port()
    local = subprocess.Popen([fnnkit, "serve", *common, "--workers", str(args.workers), "--port", str(port)])
    try:
        wait_healthy(f"http://127.0.0.1:{port}{prefix}/healthz", 120)
        answer = post(f"http://127.0.0.1:{port}{prefix}/predict", body)  # the bare deployment returns these bytes
        local_rate = peak(
            "local", f"http://127.0.0.1:{port}{prefix}", body, args.local_bound_ms, args.seconds, 2000, record
        )
    finally:
        stop(local)

    temp = tempfile.mkdtemp(prefix="fr", dir="/tmp")
    gcs, http = free_port(), free_port()
    token = Path(temp) / "token"  # token authentication, as Ray 2.59+ does for a head by default: our own token
    token.write_text(secrets.token_hex(24))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env.pop("RAY_AUTH_TOKEN", None)
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--port", str(gcs),
         "--num-cpus", "2", "--include-dashboard", "false", "--temp-dir", temp, "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    ray_engine = None
    try:
        subprocess.run(
            [sys.executable, "-c", BARE, f"127.0.0.1:{gcs}", str(http), answer.decode()], env=env, check=True,
            timeout=180,
        )  # fmt: skip
        base = f"http://127.0.0.1:{http}"
        ray_engine = subprocess.Popen(
            [fnnkit, "serve", *common, "--address", f"127.0.0.1:{gcs}", "--port", str(http)], env=env
        )
        wait_healthy(f"{base}{prefix}/healthz", 180)
        bare_answer = post(f"{base}/bare", body)
        if len(bare_answer) != len(answer):  # the ceiling must send what fnnkit sends
            raise SystemExit(f"the bare deployment answered {bare_answer!r}, not {len(answer)} bytes like {answer!r}")
        targets = {"bare Ray Serve": f"{base}/bare", "fnnkit Ray engine": f"{base}{prefix}"}
        for name, url in targets.items():
            warm_up(name, url, body, args.ray_bound_ms, args.seconds, 100)
        bare_rate, ray_rate = (
            peak(name, url, body, args.ray_bound_ms, args.seconds, 100, record) for name, url in targets.items()
        )
    finally:
        if ray_engine is not None:
            stop(ray_engine)
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
    share = ray_rate / bare_rate if bare_rate else float("nan")
    record["ray_share_of_bare"] = share
    print(
        f"\nsummary: local engine {local_rate:,.0f}/s (p99 <= {args.local_bound_ms:g} ms, {args.workers} worker(s)); "
        f"Ray engine {ray_rate:,.0f}/s vs bare Ray Serve {bare_rate:,.0f}/s (p99 <= {args.ray_bound_ms:g} ms): "
        f"{share:.0%} of the bare ceiling"
    )
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
