"""The local engine: uvicorn workers on one listening socket, each running ``Service`` in-process.

On one machine Ray Serve's proxy, controller and replica hops cost ~5 ms of CPU per request for a
model that runs in microseconds; a uvicorn worker answers a single-image request in a fraction of
a millisecond. The parent binds the socket (so a port in use or a foreign address is one line,
before any worker starts), starts ``workers`` isolated processes that inherit it (``python -I``,
no ``PYTHON*`` variables, a private working directory, killed with the parent), waits until each
has verified and loaded the model, restarts a worker that dies, and stops them all on the way out.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import selectors
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field

from fnnkit.errors import ConfigError, FnnkitError
from fnnkit.serve.app_config import ServeConfig
from fnnkit.spawn import python_argv, scrubbed_env

READY = "fnnkit-worker-ready"
START_TIMEOUT_S = 120.0  # a worker imports numpy/torch and verifies the model: seconds on a busy machine
STOP_GRACE_S = 5.0  # SIGTERM lets uvicorn finish requests in flight; then SIGKILL
BACKLOG = 2048


class ServeError(FnnkitError):
    """The local service could not start: the port, the address, or a worker that did not come up."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket, or one line saying why not (port in use, not an address of this machine)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise ConfigError(
            f"--host {host!r} does not resolve ({exc.strerror}); give an address of this machine"
        ) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"--port {port} on {host} is in use by another program; choose another --port") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(
                f"--host {host} is not an address of this machine; use 127.0.0.1 (this machine only) or 0.0.0.0"
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(f"--port {port} needs privileges on this machine; choose a port above 1023") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


@dataclass
class LocalEngine:
    """``workers`` uvicorn processes sharing one socket; ``start()``, ``supervise()``, ``stop()``."""

    config: ServeConfig
    host: str
    port: int
    workers: int
    restarts: int = 0
    sock: socket.socket | None = None
    children: list[subprocess.Popen] = field(default_factory=list)
    _private: tempfile.TemporaryDirectory | None = None

    def start(self) -> None:
        if not 1 <= self.workers <= 256:
            raise ConfigError(f"--workers {self.workers} must be in 1..256")
        self.sock = bind(self.host, self.port)
        self.port = self.sock.getsockname()[1]  # --port 0: the kernel chose one
        self._private = tempfile.TemporaryDirectory(prefix="fnnkit-serve-")
        for _ in range(self.workers):
            self.children.append(self._spawn())
        self._wait_ready(self.children)

    def _spawn(self) -> subprocess.Popen:
        code = "from fnnkit.serve.local import worker_main; sys.exit(worker_main(sys.argv[1:]))"
        fd = self.sock.fileno()
        argv = python_argv(code, json.dumps(asdict(self.config)), str(fd))
        return subprocess.Popen(
            argv, cwd=self._private.name, env=scrubbed_env(force={"OMP_NUM_THREADS": str(self.config.threads)}),
            pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def _wait_ready(self, children: list[subprocess.Popen]) -> None:
        """Each new worker prints READY once the model is verified and loaded; a bounded wait."""
        deadline = time.monotonic() + START_TIMEOUT_S
        with selectors.DefaultSelector() as sel:
            for child in children:
                sel.register(child.stdout, selectors.EVENT_READ, child)
            waiting = set(children)
            while waiting:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServeError(f"{len(waiting)} worker(s) did not start within {START_TIMEOUT_S:g} s")
                for key, _ in sel.select(timeout=min(left, 1.0)):
                    child = key.data
                    line = child.stdout.readline()
                    if line.strip() == READY:
                        waiting.discard(child)
                        sel.unregister(child.stdout)
                    elif not line:  # closed: the worker died before it was ready (its stderr says why)
                        raise ServeError(f"a worker exited with code {child.wait()} before it could serve")

    def supervise(self, tick_s: float = 0.5) -> None:
        """Forever: replace a worker that died (it re-verifies the file; a refused file answers 503)."""
        while True:
            time.sleep(tick_s)
            for i, child in enumerate(self.children):
                if child.poll() is not None:
                    self.restarts += 1
                    child.stdout.close()
                    self.children[i] = self._spawn()
                    self._wait_ready([self.children[i]])

    def stop(self) -> None:
        """SIGTERM every worker (uvicorn finishes what is in flight), SIGKILL after a grace period; close the socket."""
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in self.children:
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            if child.stdout:
                child.stdout.close()
        self.children.clear()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self._private is not None:
            self._private.cleanup()
            self._private = None


class _App:
    """A bare ASGI app: every request goes to ``Service.respond``; the model runs inline (microseconds)."""

    def __init__(self, service) -> None:
        self.service = service

    async def _infer(self, x):
        return self.service.probabilities(x)

    async def __call__(self, scope, receive, send) -> None:
        from starlette.requests import Request

        if scope["type"] != "http":
            return
        response = await self.service.respond(Request(scope, receive), self._infer)
        await response(scope, receive, send)


def worker_main(argv: list[str]) -> int:
    """One worker: load and verify the model, say READY, serve the inherited socket until SIGTERM."""
    import uvicorn

    from fnnkit.serve.service import Service

    config, fd = ServeConfig(**json.loads(argv[0])), int(argv[1])
    service = Service(config)
    gc.collect()
    gc.freeze()  # the model and imports never become garbage: later collections skip them (shorter pauses)
    sock = socket.socket(fileno=fd)
    print(READY, flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing else goes to the parent's pipe
    uv = uvicorn.Config(
        _App(service), loop="auto", http="auto", lifespan="off", access_log=False, log_level="warning",
        timeout_graceful_shutdown=int(STOP_GRACE_S), server_header=False,
    )  # fmt: skip
    uvicorn.Server(uv).run(sockets=[sock])
    return 0
