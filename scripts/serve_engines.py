"""Both serving engines and a bare Ray Serve deployment, measured in one run with one load client.

    python scripts/serve_engines.py --artifacts artifacts --seconds 5

1. The local engine (`fnnkit serve --workers N`): LoadGen's peak Poisson rate whose p99 stays within
   ``--local-bound-ms`` (10 ms).
2. A Ray head started here (`ray start --head --block`, its own temp folder and ports, stopped through
   the process this script started), then on it: a bare Ray Serve deployment that reads the body and
   returns a constant (Ray Serve's own ceiling for this request), and `fnnkit serve --address` (the Ray
   engine); each one's peak rate within ``--ray-bound-ms``, and the ratio fnnkit / bare.

Requests are single MNIST test digits as JSON, the body `fnnkit serve-load` sends. Prints one line per
measurement and a summary; everything started here is stopped on the way out.
"""

from __future__ import annotations

import argparse
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
from fnnkit.serve.load import LoadTarget, find_peak_rate, sample_body

BARE = """
import sys, ray
from ray import serve
from starlette.responses import JSONResponse
ray.init(address=sys.argv[1], log_to_driver=False)
serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[2])})

@serve.deployment(max_ongoing_requests=512, ray_actor_options={"num_cpus": 0.5})
class Bare:
    async def __call__(self, request):
        await request.body()
        return JSONResponse({"predictions": [{"class": "7"}]})

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


def peak(name: str, url: str, body: bytes, bound_ms: float, seconds: float, start_qps: float) -> float:
    best, tried = find_peak_rate(LoadTarget.parse(url, body), bound_ms, seconds, 32, start_qps=start_qps)
    for step in tried:
        print(f"  {name}: {step.line()}", flush=True)
    rate = best.completed_qps if best.valid else 0.0
    print(f"{name}: peak {rate:,.0f} requests/s with p99 <= {bound_ms:g} ms (p99 {best.p99_ms} ms)", flush=True)
    return rate


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
    args = parser.parse_args()
    fnnkit = str(Path(sys.executable).parent / "fnnkit")
    body = sample_body(preprocess(load_dataset("mnist-sample").test_x[:1]).numpy())
    prefix = f"/fnnkit_{args.dataset}_{args.variant}"
    common = ["--variant", args.variant, "--dataset", args.dataset, "--artifacts", args.artifacts]

    port = free_port()
    local = subprocess.Popen([fnnkit, "serve", *common, "--workers", str(args.workers), "--port", str(port)])
    try:
        wait_healthy(f"http://127.0.0.1:{port}{prefix}/healthz", 120)
        local_rate = peak("local", f"http://127.0.0.1:{port}{prefix}", body, args.local_bound_ms, args.seconds, 2000)
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
        subprocess.run([sys.executable, "-c", BARE, f"127.0.0.1:{gcs}", str(http)], env=env, check=True, timeout=180)
        base = f"http://127.0.0.1:{http}"
        bare_rate = peak("bare Ray Serve", f"{base}/bare", body, args.ray_bound_ms, args.seconds, 100)
        ray_engine = subprocess.Popen(
            [fnnkit, "serve", *common, "--address", f"127.0.0.1:{gcs}", "--port", str(http)], env=env
        )
        wait_healthy(f"{base}{prefix}/healthz", 180)
        ray_rate = peak("fnnkit Ray engine", f"{base}{prefix}", body, args.ray_bound_ms, args.seconds, 100)
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
    print(
        f"\nsummary: local engine {local_rate:,.0f}/s (p99 <= {args.local_bound_ms:g} ms, {args.workers} worker(s)); "
        f"Ray engine {ray_rate:,.0f}/s vs bare Ray Serve {bare_rate:,.0f}/s (p99 <= {args.ray_bound_ms:g} ms): "
        f"{share:.0%} of the bare ceiling"
    )


if __name__ == "__main__":
    main()
