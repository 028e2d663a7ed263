"""`fnnkit serve --address` on a shared Ray cluster: it touches only its own application.

The module starts its own head (`ray start --head --block` on loopback ports, its own temp folder,
token authentication with a token file of its own) and stops it through the process it started;
nothing here runs `ray stop` or shuts Serve down on a cluster it did not start. A neighbour team's
application is deployed first; two fnnkit models then serve beside it, and each way of stopping
or failing one must leave the neighbour and the other model answering.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from artifactkit import DATASET
from clitools import assert_user_error, cli_env
from test_serve import descendants, free_port, get, post, start_serve, stop, wait_healthy

pytest.importorskip("ray.serve", reason="Ray Serve is an extra: pip install 'fnnkit[serve]'")
psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.slow  # a Ray head starts in ~15 s on 2 cores; each fnnkit deploy takes seconds

NEIGHBOUR = """
import sys, ray
from ray import serve
ray.init(address=sys.argv[1], log_to_driver=False)
serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[2])})

@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0.1})
class Neighbour:
    async def __call__(self, request):
        return {"team": "neighbour"}

serve.run(Neighbour.bind(), name="neighbour", route_prefix="/neighbour")
"""


@pytest.fixture(scope="module")
def cluster(served_root, exported_root, tmp_path_factory):
    """A Ray head on loopback with token auth, a neighbour app, and fnnkit's C and D models deployed onto it."""
    ray_bin = Path(sys.executable).parent / "ray"
    temp = tempfile.mkdtemp(prefix="fr", dir="/tmp")  # short: Ray's unix socket paths must stay under 108 bytes
    token = Path(temp) / "token"
    token.write_text(secrets.token_hex(24))
    env = cli_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_AUTH_TOKEN", None)
    # On SIGTERM a head first drains its node for Serve's sake (30 s here: the neighbour's replica never leaves);
    # this cluster serves no one once its tests are done.
    head_env = {**env, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    gcs, http = free_port(), free_port()
    log = open(Path(temp) / "head.log", "w")  # noqa: SIM115 - closed in the finally below
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", "--port", str(gcs), "--num-cpus", "2",
         "--include-dashboard", "false", "--temp-dir", temp, "--object-store-memory", str(128 * 2**20),
         "--disable-usage-stats"],
        env=head_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    artifacts = tmp_path_factory.mktemp("cluster") / "artifacts"
    shutil.copytree(exported_root, artifacts)
    address = f"127.0.0.1:{gcs}"
    unauthenticated = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
    d_auth = (unauthenticated, http, "--ray-token-file", str(token))  # env, port, flags
    serving: dict[str, subprocess.Popen] = {}
    try:
        subprocess.run(
            [sys.executable, "-c", NEIGHBOUR, address, str(http)], env=env, check=True, timeout=150,
            capture_output=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{http}"
        assert get(f"{base}/neighbour")[1] == {"team": "neighbour"}
        serving["C"] = start_fnnkit("C", address, artifacts, env, http)
        serving["D"] = start_fnnkit("D", address, artifacts, *d_auth)  # the token given as --ray-token-file
        for variant in ("C", "D"):
            wait_healthy(f"{base}/fnnkit_{DATASET}_{variant}", 150, serving[variant])
        yield {
            "address": address, "env": env, "base": base, "artifacts": artifacts, "serving": serving, "http": http,
            "d_auth": d_auth,
        }  # fmt: skip
    finally:
        for process in serving.values():
            if process.poll() is None:
                stop(process, signal.SIGINT)
        started = descendants(head.pid)
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in started):
            time.sleep(0.5)
        left = [p for p in started if _alive(p)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
    assert not left, f"Ray processes left running after the head stopped: {left}"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start_fnnkit(variant: str, address: str, artifacts: Path, env: dict, port: int, *extra: str):
    return start_serve(
        "--variant", variant, "--dataset", DATASET, "--artifacts", str(artifacts), "--address", address,
        "--port", str(port), "--replica-cpus", "0.2", *extra, env=env,
    )  # fmt: skip


def answers(cluster: dict, *routes: str) -> None:
    """Every named route still answers: the neighbour with its own reply, fnnkit models with predictions."""
    for route in routes:
        if route == "neighbour":
            assert get(f"{cluster['base']}/neighbour") == (200, {"team": "neighbour"})
        else:
            status, answer = post(f"{cluster['base']}/{route}/predict", b'{"pixels": [' + b"0, " * 783 + b"1]}")
            assert status == 200 and answer["predictions"], (route, answer)


def test_two_models_serve_beside_a_neighbour(cluster):
    answers(cluster, "neighbour", f"fnnkit_{DATASET}_C", f"fnnkit_{DATASET}_D")
    assert get(f"{cluster['base']}/fnnkit_{DATASET}_D/metadata")[1]["variant"] == "D"


def test_a_route_collision_is_one_line_and_removes_nothing(cluster):
    refused = [
        start_fnnkit("C", cluster["address"], cluster["artifacts"], cluster["env"], cluster["http"], *extra)
        for extra in ((), ("--route-prefix", "/neighbour"))
    ]  # both at once: each is refused on its own
    for process in refused:
        code, out = process.wait(timeout=150), process.stdout.read()
        assert_user_error((code, out), "is taken on this cluster", "choose another --route-prefix")
    answers(cluster, "neighbour", f"fnnkit_{DATASET}_C", f"fnnkit_{DATASET}_D")


def test_an_unauthenticated_or_unreachable_cluster_is_one_line_in_bounded_time(cluster):
    env = {k: v for k, v in cluster["env"].items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = tempfile.mkdtemp(prefix="fnnkit-home-")  # no ~/.ray/auth_token either
    cases = ((cluster["address"], "token authentication"), ("127.0.0.1:9", "cannot reach Ray"))
    started = time.monotonic()
    failing = [(start_fnnkit("C", address, cluster["artifacts"], env, cluster["http"]), f) for address, f in cases]
    for process, fragment in failing:
        code, out = process.wait(timeout=150), process.stdout.read()
        assert_user_error((code, out), fragment)
    assert time.monotonic() - started < 120
    answers(cluster, "neighbour", f"fnnkit_{DATASET}_C", f"fnnkit_{DATASET}_D")


def test_ctrl_c_deletes_only_its_application(cluster):
    """Ctrl-C on D: exit 130 and one line saying its application is deleted; C and the neighbour answer."""
    _stopped_alone(cluster, cluster["serving"].pop("D"), f"fnnkit_{DATASET}_D", signal.SIGINT, 130)


def test_sigterm_deletes_only_its_application_and_an_ignored_port_is_one_line(cluster):
    """A third model asks for another --port (one line: Serve's port is cluster-wide), then SIGTERM: exit 0."""
    process = start_fnnkit(
        "E", cluster["address"], cluster["artifacts"], cluster["env"], free_port(), "--route-prefix", "/e"
    )
    try:
        wait_healthy(f"{cluster['base']}/e", 150, process)
        answers(cluster, "neighbour", f"fnnkit_{DATASET}_C", "e")
    finally:
        out = _stopped_alone(cluster, process, "e", signal.SIGTERM, 0)
    assert "ignored: Serve on this cluster already listens on" in out, out


def _stopped_alone(cluster: dict, process: subprocess.Popen, app: str, sig: int, code: int) -> str:
    """Stop one fnnkit model with ``sig``: its route goes, the neighbour and model C still answer."""
    got, out = stop(process, sig)
    assert got == code and "Traceback" not in out and "Aborted" not in out, out
    assert f"stopped serving {app} on {signal.Signals(sig).name}: application {app} is deleted from the cluster" in out
    assert "files already written" not in out, out
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and get(f"{cluster['base']}/{app}/healthz")[0] == 200:
        time.sleep(0.5)
    assert post(f"{cluster['base']}/{app}/predict", b"{}")[0] == 404
    answers(cluster, "neighbour", f"fnnkit_{DATASET}_C")
    return out
