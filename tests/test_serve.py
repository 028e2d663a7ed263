"""`fnnkit serve` on a real local Ray Serve: HTTP answers, refusals, a bounded load test, a killed replica.

One Ray session for the whole module (startup is ~10-20 s), bounded to 2 CPUs and a small
object store, no dashboard, HTTP on 127.0.0.1 only; torn down at the end, and the test checks
that no process it started is left behind.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from artifactkit import DATASET
from clitools import assert_user_error, cli_env, run_fnnkit
from PIL import Image

from fnnkit.data import preprocess
from fnnkit.errors import ConfigError
from fnnkit.predict import load_model, probabilities
from fnnkit.serve.app_config import ServeConfig
from fnnkit.serve.load import run_load, sample_body
from fnnkit.serve.runtime import Endpoint, deploy, healthy, replica_actors, shutdown, start_ray
from fnnkit.store import read_model_card

pytest.importorskip("ray.serve", reason="Ray Serve is an extra: pip install 'fnnkit[serve]'")
RAY = pytest.mark.slow  # the tests that use the `service` fixture: Ray starts in ~10-20 s, the tests take seconds
psutil = pytest.importorskip("psutil")

REPLICAS = 2
LOAD_REQUESTS, LOAD_SECONDS, CLIENTS = 600, 20.0, 4  # bounded both ways: whichever comes first


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(served_root):
    """Ray on this machine (2 CPUs), variant C deployed with 2 replicas on a free loopback port."""

    folder = served_root / DATASET / "C"
    endpoint = Endpoint("127.0.0.1", _free_port())
    start_ray(None, num_cpus=2)
    try:
        name = deploy(ServeConfig(str(folder), replicas=REPLICAS, max_batch=64, batch_wait_ms=2.0), endpoint)
        assert healthy(endpoint)
        started = {p.pid for p in psutil.Process().children(recursive=True)}
        yield endpoint, name, folder
    finally:
        shutdown()
    deadline = time.time() + 30
    while time.time() < deadline and any(psutil.pid_exists(p) and _running(p) for p in started):
        time.sleep(0.5)
    left = [p for p in started if psutil.pid_exists(p) and _running(p)]
    assert not left, f"processes left behind after ray.shutdown(): {left}"


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def reference(service, sample_data):
    """What the same verified file says locally, for 32 test digits."""

    _, _, folder = service
    x = preprocess(sample_data.test_x[:32]).numpy()
    model = load_model(folder.parent.parent, "C", DATASET, "onnxruntime")
    return x, probabilities(model, x.reshape(-1, 28, 28))


@RAY
def test_healthz_and_metadata(service):
    endpoint, name, folder = service
    assert _get(f"{endpoint.url}/healthz")["status"] == "ok"
    meta = _get(f"{endpoint.url}/metadata")

    card = read_model_card(folder)
    assert meta["model"] == name and meta["variant"] == "C" and meta["dataset"] == DATASET
    assert meta["weights_sha256"] == card["weights"]["sha256"] and meta["test_accuracy"] == card["test_accuracy"]


@RAY
def test_predict_json_single_and_batch_match_local_model(service, reference):
    endpoint, _, _ = service
    x, probs = reference
    status, one = _post(f"{endpoint.url}/predict", json.dumps({"pixels": x[0].reshape(28, 28).tolist()}).encode())
    assert status == 200 and one["predictions"][0]["class"] == str(probs[0].argmax())
    status, many = _post(f"{endpoint.url}/predict", json.dumps({"pixels": x.tolist()}).encode())
    assert status == 200 and len(many["predictions"]) == len(x)
    got = np.array([p["probability"] for p in many["predictions"]])
    np.testing.assert_allclose(got, probs.max(axis=1), atol=1e-5)


@RAY
def test_image_upload_is_normalised_like_predict(service, sample_data, reference):
    endpoint, _, _ = service
    _, probs = reference
    i = next(i for i in range(32) if probs[i].max() > 0.9)
    digit = sample_data.test_x[i].numpy()
    page = Image.new("L", (200, 200), 255)
    page.paste(Image.fromarray(255 - digit).resize((100, 100), Image.Resampling.LANCZOS), (90, 20))
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    status, answer = _post(f"{endpoint.url}/predict", buffer.getvalue(), "image/png")
    assert status == 200, answer
    assert answer["predictions"][0]["class"] == str(probs[i].argmax())
    assert any("inverted" in step for step in answer["predictions"][0]["normalisation"])


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (b'{"pixels": [1, 2, 3]}', "application/json", 400, "shaped [3]"),
        (b'{"pixels": [' + b"NaN, " * 783 + b"0]}", "application/json", 400, "NaN"),
        (b'{"pixels": [' + b'"a", ' * 783 + b"0]}", "application/json", 400, "non-numeric"),
        (b'{"pixels": [[0, 1], [0]]}', "application/json", 400, "ragged"),
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"pixels": [' + b"300, " * 783 + b"0]}", "application/json", 400, "expected [0, 1] or [0, 255]"),
        (b"hello", "text/plain", 415, "not served"),
        (b"\x89PNG\r\n\x1a\n broken", "image/png", 400, "cannot be decoded"),
    ],
)
@RAY
def test_bad_payloads_get_a_4xx_with_one_line(service, reference, body, content_type, status, fragment):
    endpoint, _, _ = service
    got, answer = _post(f"{endpoint.url}/predict", body, content_type)
    assert got == status and fragment in answer["error"] and "\n" not in answer["error"], answer
    x, _ = reference
    ok, _ = _post(f"{endpoint.url}/predict", json.dumps({"pixels": x[0].tolist()}).encode())
    assert ok == 200  # and the service keeps serving


@RAY
def test_huge_body_is_refused_from_its_declared_length(service):
    """A 1 GiB upload is answered 413 from its headers alone: the service never reads (or buffers) the body."""
    import http.client

    endpoint, _, _ = service
    connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=30)
    connection.putrequest("POST", "/predict")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(2**30))
    connection.endheaders()  # no body follows
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == 413 and "exceeds the" in answer["error"], answer


@RAY
def test_bounded_load_reports_p50_p99_and_throughput(service, reference, record_property):
    endpoint, _, _ = service
    x, _ = reference
    body = sample_body(x[:1])
    result = run_load(endpoint.url, body, requests=LOAD_REQUESTS, seconds=LOAD_SECONDS, concurrency=CLIENTS)
    summary = result.summary()
    record_property("serve_load", summary)
    print(f"\nload test, {CLIENTS} clients, batch 1, {REPLICAS} replicas: {summary}", file=sys.stderr)
    assert result.seconds <= LOAD_SECONDS + 35 and not result.failures, summary
    assert result.ok == LOAD_REQUESTS or result.seconds >= LOAD_SECONDS, summary
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] < 10_000


@RAY
def test_killed_replica_loses_only_requests_in_flight(service, reference):
    """Kill one replica mid-load: failures are bounded by the requests in flight, and Ray Serve replaces it."""
    import ray

    endpoint, name, _ = service
    x, _ = reference
    victims = replica_actors(name)
    assert len(victims) == REPLICAS
    killed = threading.Event()

    def kill_once(n: int) -> None:
        if n >= 100 and not killed.is_set():
            killed.set()
            ray.kill(victims[0], no_restart=True)

    result = run_load(
        endpoint.url, sample_body(x[:1]), requests=400, seconds=LOAD_SECONDS, concurrency=CLIENTS, on_request=kill_once
    )
    assert killed.is_set()
    lost = sum(result.failures.values())
    print(f"\nreplica killed mid-load: {result.summary()}", file=sys.stderr)
    assert lost <= CLIENTS, f"{lost} requests lost with only {CLIENTS} in flight: {result.summary()}"
    assert result.ok >= result.sent - CLIENTS
    deadline = time.time() + 60
    while time.time() < deadline and len(replica_actors(name)) < REPLICAS:
        time.sleep(1)
    assert len(replica_actors(name)) == REPLICAS, "Ray Serve did not replace the killed replica within 60 s"
    ok, _ = _post(f"{endpoint.url}/predict", json.dumps({"pixels": x[0].tolist()}).encode())
    assert ok == 200


@pytest.mark.slow  # a real fnnkit process with ray hidden: ~1.8 s
def test_serve_without_ray_says_how_to_install(tmp_path):
    """`fnnkit serve` on a machine without Ray: one line naming the extra."""
    code = "import sys; sys.modules['ray'] = None; from fnnkit.cli import main; sys.argv = ['fnnkit', 'serve']; main()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert_user_error(result, "pip install 'fnnkit[serve]'")


@pytest.mark.slow  # a real fnnkit serve process: ~2.2 s
def test_serve_refuses_a_file_verify_refuses(served_root, tmp_path):
    """A changed model.onnx is refused before Ray starts: only files `fnnkit verify` accepts are served."""
    artifacts = tmp_path / "artifacts"
    shutil.copytree(served_root, artifacts)
    with open(artifacts / DATASET / "C" / "model.onnx", "ab") as f:
        f.write(b"tampered")
    result = run_fnnkit("serve", "--variant", "C", "--dataset", DATASET, "--artifacts", str(artifacts), timeout=120)
    assert_user_error(result, "model.onnx has sha256", "Refusing to load it")
    assert "starting Ray" not in result.stdout


def test_serve_config_is_validated_once():
    """Replicas that cannot fit a local Ray would wait forever; bad numbers are refused at construction."""
    with pytest.raises(ConfigError, match="do not fit in the 2 CPUs"):
        ServeConfig("x", replicas=8, replica_cpus=0.5).check_fits(2)
    ServeConfig("x", replicas=4, replica_cpus=0.5).check_fits(2)
    with pytest.raises(ConfigError, match="batch wait"):
        ServeConfig("x", batch_wait_ms=-1)
