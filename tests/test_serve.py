"""`fnnkit serve`: the local engine (uvicorn workers) over real HTTP, payload bounds, batch invariance,
and the Ray Serve engine on a Ray cluster the test starts itself (tests/test_serve_cluster.py).

The local service runs as a real `fnnkit serve` process on a free loopback port, one per module,
stopped with SIGTERM by the fixture that started it; the test checks its exit code and that no
worker is left.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from artifactkit import DATASET
from clitools import assert_user_error, cli_env, run_fnnkit
from openmp import openmp_runtime
from PIL import Image

from fnnkit.backends import BACKENDS
from fnnkit.data import preprocess
from fnnkit.errors import ConfigError
from fnnkit.predict import load_model, probabilities
from fnnkit.serve import payload
from fnnkit.serve.app_config import ServeConfig, check_prefix
from fnnkit.serve.jsonbody import MAX_DEPTH, BodyError, load_bounded
from fnnkit.serve.load import LoadTarget, run_server_load, sample_body
from fnnkit.serve.payload import PayloadError, parse
from fnnkit.store import read_model_card

psutil = pytest.importorskip("psutil")
PREFIX = f"/fnnkit_{DATASET}_C"
BATCH_ATOL = 1e-5  # logits of one sample alone vs inside any batch, for runtimes that are not bit-identical


def batch_tolerance(dtype: torch.dtype | None, logits: np.ndarray) -> float:
    """BATCH_ATOL, or two steps of the predictor's own dtype at the largest logit where that is coarser: CPUs with
    AVX512-FP16 run one row and many rows through different fp16 kernels, which round the same sum to neighbouring
    fp16 values."""
    if dtype is None:  # ONNX Runtime, OpenVINO: fp32 logits
        return BATCH_ATOL
    step = torch.finfo(dtype).eps * 2.0 ** np.floor(np.log2(float(np.abs(logits).max())))
    return max(BATCH_ATOL, 2 * step)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, seconds: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"fnnkit serve exited {process.returncode}: {process.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url}/healthz did not answer 200 within {seconds} s")


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    return _answer(request)


def get(url: str) -> tuple[int, dict]:
    return _answer(urllib.request.Request(url))


def _answer(request: urllib.request.Request) -> tuple[int, dict]:
    """(status, JSON body); a body that is not JSON (Ray's proxy 404 for an unknown route) as {"text": ...}."""
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {"text": raw.decode(errors="replace")}


def start_serve(*args: str, cwd=None, env=None) -> subprocess.Popen:
    """The `fnnkit` console script, as a user runs it (``python -m`` would put the working directory on the
    driver's own sys.path: the user's choice, not fnnkit's; what fnnkit starts must not inherit it)."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "fnnkit"), "serve", *args], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env=env or cli_env(), cwd=cwd,
    )  # fmt: skip


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> tuple[int, str]:
    """Signal a serve process, wait (bounded), and return (exit code, everything it printed)."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        raise AssertionError(f"fnnkit serve did not stop within {timeout} s after {sig!r}: {out}") from None
    return process.returncode, out


def descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def assert_gone(pids: list[int], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    assert not alive, f"processes left running: {alive}"


# --------------------------------------------------------------------------- the local engine, over HTTP


@pytest.fixture(scope="module")
def local(served_root, tmp_path_factory):
    """`fnnkit serve` (local engine, 2 workers) on a free loopback port, started in a folder holding a numpy.py."""
    hostile = tmp_path_factory.mktemp("cwd")
    (hostile / "numpy.py").write_text("raise SystemExit('foreign numpy.py imported')\n")
    port = free_port()
    process = start_serve(
        "--variant", "C", "--dataset", DATASET, "--artifacts", str(served_root), "--port", str(port),
        "--workers", "2", cwd=hostile,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}{PREFIX}"
    try:
        wait_healthy(url, 90, process)
        workers = descendants(process.pid)
        yield url, process, workers
    finally:
        code, out = stop(process)
    assert code == 0 and "Traceback" not in out, out
    assert f"stopped serving fnnkit_{DATASET}_C on SIGTERM: its 2 worker(s) are stopped" in out, out
    assert_gone(workers)


@pytest.fixture(scope="module")
def reference(served_root, sample_data):
    """What the same verified file says in this process, for 32 test digits."""
    x = preprocess(sample_data.test_x[:32]).numpy()
    model = load_model(served_root, "C", DATASET, "onnxruntime")
    return x, probabilities(model, x.reshape(-1, 28, 28))


def test_a_service_runs_its_model_with_its_thread_count_in_whichever_thread_calls_it(served_root):
    """A Ray Serve replica answers in a thread of its own, not the one that loaded the model; OpenMP keeps its
    thread count per thread, so the service sets it in each thread that runs the model (left at the default,
    torch's matmul forms a team per core whose idle thread spins between requests)."""
    import threading

    from fnnkit.serve.service import Service

    service = Service(ServeConfig(folder=served_root / DATASET / "C", backend="eager", threads=1))
    omp = openmp_runtime()
    predictor = service.model.predictor
    model, seen = predictor.fn, []
    predictor.fn = lambda x: (seen.append(omp.omp_get_max_threads()), model(x))[1]
    answers = []
    caller = threading.Thread(target=lambda: answers.append(service.probabilities(np.zeros((3, 784), np.float32))))
    caller.start()
    caller.join(timeout=60)
    assert answers and answers[0].shape == (3, 10)
    assert seen == [1], f"OpenMP thread counts seen by the model's calls: {seen}"


@pytest.mark.slow  # a real `fnnkit serve` with two workers: ~5 s to start, the tests take milliseconds
def test_local_workers_are_isolated_and_routes_answer(local, served_root):
    url, process, workers = local
    assert len(workers) == 2
    for pid in workers:
        info = psutil.Process(pid)
        assert "-I" in info.cmdline() and not any(k.startswith("PYTHON") for k in info.environ())
        assert "fnnkit-serve-" in info.cwd()  # a private folder, not the one holding numpy.py
    status, health = get(f"{url}/healthz")
    assert status == 200 and health["status"] == "ok"
    status, meta = get(f"{url}/metadata")
    card = read_model_card(served_root / DATASET / "C")
    assert status == 200 and meta["weights_sha256"] == card["weights"]["sha256"] and meta["route_prefix"] == PREFIX
    status, answer = get(f"{url.rsplit('/', 1)[0]}/predict")
    assert status == 404 and f"POST {PREFIX}/predict" in answer["error"]
    status, answer = get(f"{url}/predict")
    assert status == 405 and "error" in answer


@pytest.mark.slow  # shares the local service
def test_a_local_service_listens_on_loopback_only(local):
    """The default engine starts no Ray: every socket the service and its workers listen on is on 127.0.0.1."""
    _, process, workers = local
    listening = [
        c.laddr
        for pid in (process.pid, *workers)
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening and all(address.ip == "127.0.0.1" for address in listening), listening


@pytest.mark.slow  # shares the local service
def test_local_predict_matches_the_model(local, reference):
    url, _, _ = local
    x, probs = reference
    status, one = post(f"{url}/predict", json.dumps({"pixels": x[0].reshape(28, 28).tolist()}).encode())
    assert status == 200 and one["predictions"][0]["class"] == str(probs[0].argmax())
    status, many = post(f"{url}/predict", json.dumps({"pixels": x.tolist()}).encode())
    got = np.array([p["probability"] for p in many["predictions"]])
    assert status == 200 and len(got) == len(x)
    np.testing.assert_allclose(got, probs.max(axis=1), atol=1e-5)


@pytest.mark.slow  # shares the local service
def test_local_image_upload_is_normalised_like_predict(local, sample_data, reference):
    url, _, _ = local
    _, probs = reference
    i = next(i for i in range(32) if probs[i].max() > 0.9)
    page = Image.new("L", (200, 200), 255)
    page.paste(Image.fromarray(255 - sample_data.test_x[i].numpy()).resize((100, 100)), (90, 20))
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    status, answer = post(f"{url}/predict", buffer.getvalue(), "image/png")
    assert status == 200 and answer["predictions"][0]["class"] == str(probs[i].argmax()), answer
    assert any("inverted" in step for step in answer["predictions"][0]["normalisation"])


HOSTILE = [
    (b'{"pixels": [1, 2, 3]}', "application/json", 400, "shaped [3]"),
    (b'{"pixels": [' + b"NaN, " * 783 + b"0]}", "application/json", 400, "NaN"),
    (b'{"pixels": [[0, 1], [0]]}', "application/json", 400, "ragged"),
    (b"{not json", "application/json", 400, "not valid JSON"),
    (b"\xff\xfe{}", "application/json", 400, "not valid JSON"),
    (b'{"pixels": [' + b"300, " * 783 + b"0]}", "application/json", 400, "expected [0, 1] or [0, 255]"),
    (b'{"pixels": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", 400, "nests 100001 levels"),
    (b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, "application/json", 400, "nests 50000 levels"),
    (b'{"pixels": [' + b"7" * 5000 + b"]}", "application/json", 400, "over 4,300 digits"),
    (b'{"pixels": [' + b"1" * 4000 + b"]}", "application/json", 400, "values too large"),
    (b"hello", "text/plain", 415, "not served"),
    (b"\x89PNG\r\n\x1a\n broken", "image/png", 400, "cannot be decoded"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "fragment"), HOSTILE)
def test_hostile_bodies_are_one_line_refusals_without_a_server(body, content_type, status, fragment):
    """The checks both engines run, on the bytes: a PayloadError with the HTTP status, never another exception."""
    with pytest.raises(PayloadError) as refused:
        parse(body, content_type)
    assert refused.value.status == status and fragment in str(refused.value) and "\n" not in str(refused.value)


PIXEL_SHAPES = [
    5,
    0.5,
    True,
    None,
    "7",
    [],
    [[]],
    [[[]]],
    [[[[]]]],
    [1, 2.5],
    [1, True],
    [1, None],
    [1, "7"],
    [1, {}],
    [[1, 2], 3],
    [[1, 2], [3, "x"]],
    [[[1]], [2]],
    [[[0.1, 2]], [[3, 4]]],
    [[[[1]]]],
    [[[1, [2]]]],
    [[0] * 784] * 3,
    [[[0] * 28] * 28] * 2,
    [[[0] * 28] * 28, [[0] * 28] * 27 + [[0] * 27 + [False]]],
    [[1.5, [1]], [None]],
]


@pytest.mark.parametrize("pixels", PIXEL_SHAPES, ids=[repr(p)[:30] for p in PIXEL_SHAPES])
def test_the_quick_pixel_check_accepts_only_what_the_walk_accepts(pixels, monkeypatch):
    """The type-set fast path never passes a body the item-by-item walk refuses, and refusals keep the walk's words."""
    with_fast = _outcome(pixels)
    monkeypatch.setattr(payload, "_plainly_numbers", lambda _: False)
    assert with_fast == _outcome(pixels)


def test_serve_load_results_drive_the_peak_search():
    """`serve-load --find-peak` hands LoadResult to the shared search: it must answer the search's questions."""
    from fnnkit.bench.scenarios.search import find_peak
    from fnnkit.serve import load
    from fnnkit.serve.load import LoadResult

    def run(qps: float) -> LoadResult:  # a service that answers up to 300/s within the bound
        answered = min(qps, 300.0 if qps <= 330 else 200.0)
        return LoadResult(qps, 100, "VALID" if qps <= 300 else "INVALID", answered, 5.0, 50.0, 10, 10)

    search = find_peak(run, 100, 20, 100_000, 0.05, 10)
    assert search.peak_qps is not None and 280 <= search.peak_qps <= 300, search
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(load, "run_server_load", lambda target, q, *rest: run(q))
        best, tried = load.find_peak_rate(LoadTarget.parse("http://127.0.0.1:9/x", b"{}"), 100, 1, 1, 100)
    assert best.valid and best.qps == search.peak_qps and len(tried) == len(search.steps)
    assert run(1000).overloaded and not run(320).overloaded and not run(320).contended


def test_valid_pixels_take_the_quick_check():
    assert all(payload._plainly_numbers(p) for p in ([0.5] * 784, [[0, 1.5] * 392] * 3, [[[0] * 28] * 28] * 2))


def _outcome(pixels) -> str:
    try:
        payload._only_numbers(pixels)
    except PayloadError as exc:
        return str(exc)
    return "accepted"


@pytest.mark.slow  # shares the local service
def test_local_hostile_bodies_get_a_4xx_and_the_service_keeps_serving(local, reference):
    url, _, _ = local
    x, _ = reference
    for body, content_type, status, fragment in HOSTILE:
        got, answer = post(f"{url}/predict", body, content_type)
        assert got == status and fragment in answer["error"], (body[:40], answer)
    assert post(f"{url}/predict", json.dumps({"pixels": x[0].tolist()}).encode())[0] == 200


def test_bounded_json_parse_costs_one_scan():
    """Depth is measured on the bytes: strings may hold brackets; numbers inside the bound parse as usual."""
    assert load_bounded(b'{"pixels": "[[[[[[[[[[[[[[[["}') == {"pixels": "[[[[[[[[[[[[[[[["}
    nested = load_bounded(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
    for _ in range(MAX_DEPTH - 1):
        nested = nested[0]
    assert nested == []
    with pytest.raises(BodyError, match=f"nests {MAX_DEPTH + 1} levels"):
        load_bounded(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))


@pytest.mark.slow  # shares the local service
def test_local_huge_declared_length_is_refused_from_headers(local):
    url, _, _ = local
    host, port = url.split("//")[1].split("/")[0].split(":")
    for length in (str(2**30), "9" * 5000):
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.putrequest("POST", f"{PREFIX}/predict")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", length)
        connection.endheaders()
        response = connection.getresponse()
        status, answer = response.status, response.read()
        connection.close()
        assert status in (400, 413), (status, answer)  # 413 from fnnkit; uvicorn refuses a 5,000-digit length itself


@pytest.mark.slow  # shares the local service; a LoadGen run of ~2 s
def test_loadgen_client_against_the_local_engine(local, reference):
    """Poisson arrivals at a modest rate: every request answered, LoadGen's p50 <= p99, the verdict read back."""
    url, _, _ = local
    x, _ = reference
    result = run_server_load(LoadTarget.parse(url, sample_body(x[:1])), 300, 200, 2.0, 8)
    print(f"\nserve-load at 300/s: {result.line()}", file=sys.stderr)
    assert result.failed == 0 and result.answered == result.sent > 0, result.line()
    assert 0 < result.p50_ms <= result.p99_ms and result.completed_qps > 150


@pytest.mark.slow  # shares the local service; kills a worker
def test_killed_worker_is_replaced(local, reference):
    url, process, _ = local
    x, _ = reference
    victim = descendants(process.pid)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        len(descendants(process.pid)) == 2 and victim not in descendants(process.pid)
    ):
        time.sleep(0.3)
    assert victim not in descendants(process.pid) and len(descendants(process.pid)) == 2
    wait_healthy(url, 30)
    assert post(f"{url}/predict", json.dumps({"pixels": x[0].tolist()}).encode())[0] == 200


@pytest.mark.slow  # a real fnnkit serve process, one worker: ~4 s
def test_a_worker_refusing_a_tampered_file_answers_503_at_once(served_root, tmp_path):
    """The file changes after the service started and a worker restarts: clients get 503 with the reason."""
    artifacts = tmp_path / "artifacts"
    shutil.copytree(served_root, artifacts)
    port = free_port()
    process = start_serve(
        "--variant", "C", "--dataset", DATASET, "--artifacts", str(artifacts), "--port", str(port), "--workers", "1"
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}{PREFIX}"
    try:
        wait_healthy(url, 90, process)
        with open(artifacts / DATASET / "C" / "model.onnx", "ab") as f:
            f.write(b"tampered")
        os.kill(descendants(process.pid)[0], signal.SIGKILL)
        deadline, status, answer = time.monotonic() + 60, 0, {}
        while time.monotonic() < deadline and status != 503:
            try:
                started = time.monotonic()
                status, answer = post(f"{url}/predict", b'{"pixels": [0]}')
            except OSError:
                time.sleep(0.2)
        assert status == 503 and "model refused" in answer["error"] and "sha256" in answer["error"], answer
        assert time.monotonic() - started < 5
        assert get(f"{url}/healthz")[0] == 503
    finally:
        code, out = stop(process, signal.SIGINT)  # Ctrl-C: exit 130 and a line that says what stopped
    assert code == 130 and "stopped serving" in out and "on SIGINT: its 1 worker(s) are stopped" in out, out
    assert "files already written" not in out and "Traceback" not in out, out


@pytest.mark.slow  # real fnnkit processes: ~3 s each
def test_port_in_use_and_foreign_host_are_one_line(served_root):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_fnnkit(
            "serve", "--variant", "C", "--dataset", DATASET, "--artifacts", str(served_root), "--port", str(port),
            timeout=120,
        )  # fmt: skip
    assert_user_error(result, f"--port {port} on 127.0.0.1 is in use")
    result = run_fnnkit(
        "serve", "--variant", "C", "--dataset", DATASET, "--artifacts", str(served_root), "--host", "192.0.2.254",
        timeout=120,
    )  # fmt: skip
    assert_user_error(result, "--host 192.0.2.254 is not an address of this machine")


@pytest.mark.slow  # a real fnnkit serve process: ~3 s
def test_sigterm_during_startup_stops_cleanly(served_root):
    port = str(free_port())
    process = start_serve("--variant", "C", "--dataset", DATASET, "--artifacts", str(served_root), "--port", port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None and not descendants(process.pid):
        time.sleep(0.05)
    workers = descendants(process.pid)
    code, out = stop(process)
    assert code == 0 and "Traceback" not in out, out
    assert_gone(workers)


@pytest.mark.slow  # a real fnnkit serve process: ~2.2 s
def test_serve_refuses_a_file_verify_refuses(served_root, tmp_path):
    """A changed model.onnx is refused before any worker or Ray starts."""
    artifacts = tmp_path / "artifacts"
    shutil.copytree(served_root, artifacts)
    with open(artifacts / DATASET / "C" / "model.onnx", "ab") as f:
        f.write(b"tampered")
    for engine in ("local", "ray"):
        result = run_fnnkit(
            "serve", "--variant", "C", "--dataset", DATASET, "--artifacts", str(artifacts), "--engine", engine,
            timeout=120,
        )  # fmt: skip
        assert_user_error(result, "model.onnx has sha256", "Refusing to load it")
        assert "starting" not in result.stdout


@pytest.mark.slow  # a real fnnkit process with ray hidden: ~1.8 s
def test_ray_engine_without_ray_says_how_to_install():
    code = (
        "import sys; sys.modules['ray'] = None; from fnnkit.cli import main; "
        "sys.argv = ['fnnkit', 'serve', '--engine', 'ray']; main()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert_user_error(result, "pip install 'fnnkit[serve]'")


def test_serve_config_is_validated_once():
    """Replicas that cannot fit a local Ray would wait forever; bad numbers and prefixes are refused at construction."""
    with pytest.raises(ConfigError, match="do not fit in the 2 CPUs"):
        ServeConfig("x/mnist/C", replicas=8, replica_cpus=0.5).check_fits(2)
    ServeConfig("x/mnist/C", replicas=4, replica_cpus=0.5).check_fits(2)
    with pytest.raises(ConfigError, match="batch wait"):
        ServeConfig("x/mnist/C", batch_wait_ms=-1)
    assert ServeConfig("x/mnist/C").route_prefix == "/fnnkit_mnist_C"
    assert ServeConfig("x/mnist/C", route_prefix="/team/digits").app_name == "team_digits"
    for bad in ("", "/", "predict", "/a/", "/a/../b", "/a?b", "/" + "x" * 65, "/a/b/c/d/e"):
        with pytest.raises(ConfigError, match="--route-prefix"):
            check_prefix(bad)


def test_serve_refuses_batch_dependent_backends(cli, served_root):
    """Dynamic int8 answers a sample differently beside other samples: serve names the static one instead."""
    code, out = cli("serve", "--backend", "onnxruntime-int8", "--artifacts", str(served_root), "--dataset", DATASET)
    assert code == 2 and "depending on its batch" in out and "onnxruntime-int8-static" in out, out


# --------------------------------------------------------------------------- one answer per input, whatever the batch


SERVED = [name for name, backend in BACKENDS.items() if "cpu" in backend.devices]


@pytest.mark.parametrize("name", SERVED)
def test_each_sample_gets_one_answer_alone_or_in_any_batch(name, exported_root, sample_data):
    """Each test digit alone, then inside mixed batches (other digits, noise): the flag in the registry is true.

    Served backends (batch_invariant) give the same logits within BATCH_ATOL (bit-identical for the ONNX
    runtimes here; two units in the last place for fp16/bf16) and the same top-1; a backend flagged
    batch-dependent must really differ, or the flag lies.
    """
    backend = BACKENDS[name]
    ok, why = backend.available("cpu")
    if not ok:
        pytest.skip(f"{name}: {why}")
    missing = backend.missing(exported_root / DATASET / "C", "cpu")
    if missing:
        pytest.skip(f"{name}: not exported in the session fixture ({missing})")
    model = load_model(exported_root, "C", DATASET, name)
    x = preprocess(sample_data.test_x[:100]).numpy()
    alone = np.concatenate([model.predictor.predict(x[i : i + 1]) for i in range(len(x))])
    rng = np.random.default_rng(0)
    worst, flips = 0.0, 0
    for n in (2, 7, 64, 100):
        order = rng.permutation(len(x))[:n]
        noise = rng.random((n, 784), dtype=np.float32)
        mixed = np.concatenate([noise[: n // 2], x[order], noise[n // 2 :]])
        got = model.predictor.predict(mixed)[n // 2 : n // 2 + n]
        worst = max(worst, float(np.abs(got - alone[order]).max()))
        flips += int((got.argmax(1) != alone[order].argmax(1)).sum())
    allowed = batch_tolerance(getattr(model.predictor, "dtype", None), alone)
    if backend.batch_invariant:
        assert worst <= allowed and flips == 0, f"{name}: max |d| {worst:g} (allowed {allowed:g}), {flips} flips"
    else:
        assert worst > allowed, f"{name} is flagged batch-dependent but gave identical answers"


def test_batch_tolerance_is_the_rounding_of_the_precision():
    """fp32 and non-torch predictors get BATCH_ATOL; fp16 and bf16 two steps of their dtype at the largest logit."""
    logits = np.array([[-3.0, 7.5]], dtype=np.float32)
    assert batch_tolerance(None, logits) == BATCH_ATOL
    assert batch_tolerance(torch.float32, logits) == BATCH_ATOL
    assert batch_tolerance(torch.float16, logits) == 2 * 2.0**-8
    assert batch_tolerance(torch.bfloat16, logits) == 2 * 2.0**-5
