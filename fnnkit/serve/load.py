"""`fnnkit serve-load`: MLPerf LoadGen drives HTTP requests at a running service.

LoadGen's server scenario schedules Poisson arrivals at the offered rate, times every request
from its *scheduled* arrival to its answer (so a client that falls behind shows as latency,
not as a lower rate), and decides whether the p99 meets the bound: the project's one load
engine, the same one ``fnnkit bench load --scenario server`` uses on a model without HTTP.

The client is one asyncio (uvloop) thread with ``connections`` keep-alive connections: LoadGen's
issue thread only hands each query to that loop; a free connection writes a prebuilt request
and reads one answer. Every request is bounded: issuing stops at LoadGen's cap, and whatever is
still unanswered ``DRAIN_S`` later is completed as a failure, so a stalled service ends the run.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from fnnkit.errors import ConfigError, FnnkitError

DRAIN_S = 10.0  # after LoadGen's cap, answers may take this long; then they count as failures
CONNECT_TIMEOUT_S = 5.0
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d{1,12})", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.IGNORECASE)


@dataclass(frozen=True)
class LoadTarget:
    """Where requests go and the exact bytes of one request (built once)."""

    host: str
    port: int
    path: str  # the route prefix + /predict
    body: bytes

    @classmethod
    def parse(cls, url: str, body: bytes, allow_remote: bool = False) -> LoadTarget:
        """``http://host:port/prefix``; only loopback unless ``allow_remote`` (load on a stranger is an attack)."""
        parts = urlsplit(url)
        try:
            port = parts.port or 80
        except ValueError:
            port = None
        if parts.scheme != "http" or not parts.hostname or port is None or parts.query or parts.fragment:
            raise ConfigError(f"--url {url!r}: expected http://host:port/<route prefix>")
        if not allow_remote and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError(f"--url {url!r} is not loopback; pass --allow-remote to load-test another machine")
        path = parts.path.rstrip("/")
        path = path if path.endswith("/predict") else f"{path}/predict"
        return cls(parts.hostname, port, path, body)

    @property
    def request(self) -> bytes:
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\n\r\n"
        )
        return head.encode() + self.body


@dataclass
class LoadResult:
    """LoadGen's verdict and figures for one rate, plus what the client saw fail."""

    qps: float
    bound_ms: float
    validity: str  # VALID | INVALID (LoadGen's), FAILED (requests failed)
    completed_qps: float | None
    p50_ms: float | None
    p99_ms: float | None
    sent: int
    answered: int
    failures: Counter = field(default_factory=Counter)
    reasons: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def valid(self) -> bool:
        return self.validity == "VALID" and not self.failed

    @property
    def overloaded(self) -> bool:
        """Far above capacity (under 80% of the offered rate answered): the peak search needs no second vote."""
        return (self.completed_qps or 0.0) < 0.8 * self.qps

    @property
    def contended(self) -> bool:
        """Always False: the service under load shares the machine by design, so busy cores say nothing here."""
        return False

    def line(self) -> str:
        figures = (
            f"{self.completed_qps or 0:,.0f} requests/s answered, p50 {self.p50_ms or float('nan'):.2f} ms, "
            f"p99 {self.p99_ms or float('nan'):.2f} ms"
        )
        extra = f"; failed: {dict(self.failures)}" if self.failed else ""
        why = f" ({'; '.join(self.reasons)})" if self.reasons and not self.valid else ""
        return (
            f"offered {self.qps:,.0f}/s (Poisson), p99 bound {self.bound_ms:g} ms: {figures}: "
            f"{'VALID' if self.valid else self.validity}{why}; {self.answered} of {self.sent} answered{extra}"
        )

    def summary(self) -> dict:
        return {
            "qps": self.qps, "validity": self.validity, "valid": self.valid, "completed_qps": self.completed_qps,
            "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "sent": self.sent, "answered": self.answered,
            "failed": dict(self.failures),
        }  # fmt: skip


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: one request in flight, the answer parsed by hand (no per-request objects)."""

    def __init__(self, client: _Client) -> None:
        self.client, self.transport, self.buffer, self.current = client, None, bytearray(), None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.client.idle(self)

    def send(self, sample) -> None:
        self.current = sample
        self.transport.write(self.client.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[: end + 2])
        length = _LENGTH.search(head)
        if length:
            total = end + 4 + int(length[1])
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4 : total])
            del self.buffer[:total]
        elif _CHUNKED.search(head):
            body = self._dechunk(end + 4)
            if body is None:
                return
        else:
            return  # no length yet
        ok = head.startswith(b"HTTP/1.1 200") and b'"predictions"' in body
        sample, self.current = self.current, None
        self.client.done(sample, None if ok else f"HTTP {head[9:12].decode(errors='replace')}")
        self.client.idle(self)

    def _dechunk(self, start: int) -> bytes | None:
        out, at = bytearray(), start
        while True:
            eol = self.buffer.find(b"\r\n", at)
            if eol < 0:
                return None
            size = int(bytes(self.buffer[at:eol]).split(b";")[0] or b"0", 16)
            if len(self.buffer) < eol + 2 + size + 2:
                return None
            out += self.buffer[eol + 2 : eol + 2 + size]
            at = eol + 2 + size + 2
            if size == 0:
                del self.buffer[:at]
                return bytes(out)

    def connection_lost(self, exc) -> None:
        self.client.lost(self)


class _Client:
    """The asyncio side: free connections, queued samples, completions back to LoadGen."""

    def __init__(self, lg, target: LoadTarget, connections: int) -> None:
        self.lg, self.target, self.request, self.wanted = lg, target, target.request, connections
        self.loop = asyncio.new_event_loop()
        self.free: deque[_Connection] = deque()
        self.queue: deque = deque()
        self.in_flight: set[_Connection] = set()
        self.sent = self.answered = 0
        self.failures: Counter = Counter()
        self.closing = False

    # --- LoadGen's threads
    def issue(self, samples) -> None:
        self.loop.call_soon_threadsafe(self._enqueue, [(s.id, s.index) for s in samples])

    def flush(self) -> None:
        """Nothing is held back: every query is sent as it arrives."""

    # --- the loop's thread
    def _enqueue(self, samples) -> None:
        self.sent += len(samples)
        self.queue.extend(samples)
        while self.queue and self.free:
            self._send(self.free.popleft(), self.queue.popleft())

    def _send(self, conn: _Connection, sample) -> None:
        self.in_flight.add(conn)
        conn.send(sample)

    def idle(self, conn: _Connection) -> None:
        self.in_flight.discard(conn)
        if self.queue and not self.closing:
            self._send(conn, self.queue.popleft())
        else:
            self.free.append(conn)

    def done(self, sample, failure: str | None) -> None:
        if failure is None:
            self.answered += 1
        else:
            self.failures[failure] += 1
        self.lg.QuerySamplesComplete([self.lg.QuerySampleResponse(sample[0], 0, 0)])

    def lost(self, conn: _Connection) -> None:
        self.in_flight.discard(conn)
        if conn in self.free:
            self.free.remove(conn)
        if conn.current is not None:
            self.done(conn.current, "connection lost")
            conn.current = None
        if not self.closing:
            self.loop.create_task(self._open())

    async def _open(self) -> None:
        try:
            await asyncio.wait_for(
                self.loop.create_connection(lambda: _Connection(self), self.target.host, self.target.port),
                CONNECT_TIMEOUT_S,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            if not self.closing:
                self.failures[f"connect: {type(exc).__name__}"] += 0  # seen; samples fail when drained
                await asyncio.sleep(0.1)
                self.loop.create_task(self._open())

    async def connect_all(self) -> None:
        """Open every connection before LoadGen starts; the first failure is the service not answering."""
        results = await asyncio.gather(
            *(
                asyncio.wait_for(
                    self.loop.create_connection(lambda: _Connection(self), self.target.host, self.target.port),
                    CONNECT_TIMEOUT_S,
                )
                for _ in range(self.wanted)
            ),
            return_exceptions=True,
        )
        bad = [r for r in results if isinstance(r, BaseException)]
        if bad:
            raise FnnkitError(
                f"cannot connect to {self.target.host}:{self.target.port} ({type(bad[0]).__name__}: {bad[0]}): "
                "is `fnnkit serve` running there?"
            )

    def drain(self) -> None:
        """Complete every queued or unanswered sample as a failure (the service stalled past the cap)."""
        self.closing = True
        while self.queue:
            self.done(self.queue.popleft(), "unanswered")
        for conn in list(self.in_flight):
            if conn.current is not None:
                self.done(conn.current, "unanswered")
                conn.current = None
            conn.transport.abort()

    def close(self) -> None:
        self.closing = True
        for conn in list(self.free) + list(self.in_flight):
            if conn.transport is not None:
                conn.transport.abort()


def run_server_load(
    target: LoadTarget, qps: float, latency_bound_ms: float, seconds: float, connections: int, seed: int = 0
) -> LoadResult:
    """One LoadGen server-scenario run at ``qps`` against ``target``; bounded by ``2 * seconds + DRAIN_S`` or so."""
    from fnnkit.bench.scenarios.config import ScenarioConfig
    from fnnkit.bench.scenarios.loadgen import loadgen, parse_detail, settings_for

    lg = loadgen()
    if not 1 <= connections <= 1024:
        raise ConfigError(f"--connections {connections} must be in 1..1024")
    config = ScenarioConfig(
        scenario="server", qps=qps, latency_bound_ms=latency_bound_ms, min_duration_ms=int(seconds * 1000),
        time_cap_s=seconds * 2 + 5, seed=seed,
    )  # fmt: skip
    client = _Client(lg, target, connections)
    _use_uvloop(client)
    thread = threading.Thread(target=client.loop.run_forever, name="serve-load", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(client.connect_all(), client.loop).result(CONNECT_TIMEOUT_S * 2)
        with tempfile.TemporaryDirectory(prefix="fnnkit-serve-load-") as work:
            log = lg.LogSettings()
            log.log_output.outdir = work
            log.log_output.copy_summary_to_stdout = False
            log.enable_trace = False
            qsl = lg.ConstructQSL(1, 1, _noop, _noop)  # one prebuilt body; LoadGen picks index 0 every time
            sut = lg.ConstructSUT(client.issue, client.flush)
            cap = threading.Timer(config.time_cap_s + DRAIN_S, lambda: client.loop.call_soon_threadsafe(client.drain))
            cap.daemon = True
            cap.start()
            try:
                lg.StartTestWithLogSettings(sut, qsl, settings_for(config, qps, False), log, "")
            finally:
                cap.cancel()
                lg.DestroySUT(sut)
                lg.DestroyQSL(qsl)
            detail = parse_detail(Path(work) / "mlperf_log_detail.txt", mode="performance")
    finally:
        client.loop.call_soon_threadsafe(client.close)
        client.loop.call_soon_threadsafe(client.loop.stop)
        thread.join(timeout=5)
    p = detail.p
    return LoadResult(
        qps=qps, bound_ms=latency_bound_ms, validity=detail.validity if not client.failures else "FAILED",
        completed_qps=detail.completed_qps, p50_ms=p("50.00"), p99_ms=p("99.00"), sent=client.sent,
        answered=client.answered, failures=client.failures, reasons=list(detail.reasons),
    )  # fmt: skip


def find_peak_rate(
    target: LoadTarget, latency_bound_ms: float, seconds: float, connections: int, start_qps: float = 1000.0
) -> tuple[LoadResult, list[LoadResult]]:
    """The highest Poisson rate LoadGen calls VALID (p99 within the bound, nothing failed), within 5%."""
    from fnnkit.bench.scenarios.search import find_peak

    search = find_peak(
        lambda q: run_server_load(target, q, latency_bound_ms, seconds, connections),
        start=start_qps, min_qps=20, max_qps=100_000, precision=0.05, max_steps=10,
    )  # fmt: skip
    tried = [result for _, result in search.steps]
    confirmed = [r for r in search.at(search.peak_qps) if r.valid] if search.peak_qps is not None else []
    if confirmed:  # the rate the search confirmed (most of its runs VALID)
        return max(confirmed, key=lambda r: r.completed_qps or 0.0), tried
    return min(tried, key=lambda r: r.qps), tried  # nothing confirmed: the lowest rate tried, not VALID


def _use_uvloop(client: _Client) -> None:
    try:
        import uvloop
    except ImportError:
        return
    client.loop.close()
    client.loop = uvloop.new_event_loop()


def _noop(samples) -> None:
    """QSL load/unload: the one body is already built."""


def sample_body(pixels) -> bytes:
    """A JSON body for float32 [N, 784] pixels."""
    import json

    import numpy as np

    return json.dumps({"pixels": np.round(pixels, 4).tolist()}).encode()
