"""A bounded HTTP load test of `POST /predict`: fixed request count and wall-clock cap, loopback by default.

Closed loop: ``concurrency`` clients, each with its own keep-alive connection, send the next
request when the previous answer arrives, so the latency reported is what a client waits.
A request that fails (connection reset, 5xx) is counted, not retried: a lost request shows.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

from fnnkit.errors import ConfigError


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)  # "HTTP 503", "ConnectionResetError", ...

    @property
    def requests_per_s(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def summary(self) -> dict:
        return {
            "sent": self.sent, "ok": self.ok, "failed": dict(self.failures), "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.requests_per_s, 1), "p50_ms": round(self.percentile(50), 2),
            "p99_ms": round(self.percentile(99), 2),
        }  # fmt: skip


def check_url(url: str, allow_remote: bool = False) -> tuple[str, int]:
    """host, port of an http:// URL; only loopback unless ``allow_remote`` (load on a stranger is an attack)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(f"--url {url!r}: expected http://host:port")
    if not allow_remote and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"--url {url!r} is not loopback; pass --allow-remote to load-test another machine")
    return parts.hostname, parts.port or 80


def run_load(
    url: str,
    body: bytes,
    *,
    requests: int,
    seconds: float,
    concurrency: int = 4,
    allow_remote: bool = False,
    on_request=None,
) -> LoadResult:
    """Send up to ``requests`` POST /predict bodies within ``seconds``; ``on_request(n)`` is called after each."""
    host, port = check_url(url, allow_remote)
    if not (1 <= concurrency <= 256 and requests >= 1 and seconds > 0):
        raise ConfigError("load test needs 1..256 clients, at least 1 request and a positive duration")
    result, lock = LoadResult(), threading.Lock()
    deadline = time.perf_counter() + seconds
    headers = {"Content-Type": "application/json"}

    def client() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        while time.perf_counter() < deadline:
            with lock:
                if result.sent >= requests:
                    break
                result.sent += 1
                n = result.sent
            start = time.perf_counter()
            outcome = _post(connection, body, headers)
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                if outcome is None:
                    result.ok += 1
                    result.latencies_ms.append(elapsed)
                else:
                    result.failures[outcome] += 1
            if outcome is not None:  # a dead connection is replaced; the failure is already counted
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)
            if on_request is not None:
                on_request(n)
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    result.seconds = time.perf_counter() - started
    return result


def _post(connection: http.client.HTTPConnection, body: bytes, headers: dict) -> str | None:
    """None when the service answered 200 with predictions; otherwise what went wrong, in a few words."""
    try:
        connection.request("POST", "/predict", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    if response.status != 200:
        return f"HTTP {response.status}"
    return None if b"predictions" in payload else "no predictions in the answer"


def sample_body(pixels: np.ndarray) -> bytes:
    """A JSON body for float32 [N, 784] pixels."""
    return json.dumps({"pixels": np.round(pixels, 4).tolist()}).encode()
