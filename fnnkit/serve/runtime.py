"""The Ray Serve engine's life: start or join Ray, deploy one application, and remove only what fnnkit made.

On a cluster fnnkit joined (``--address``), stopping for any reason (Ctrl-C, SIGTERM, a failed
start, an error) deletes fnnkit's own application and nothing else; only a Ray that fnnkit
started itself is shut down. Every wait is bounded and says what it waited for. Kept apart from
``app`` so the CLI can say how to install Ray before anything imports it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fnnkit.errors import ConfigError, FnnkitError, Interrupted
from fnnkit.serve.app_config import ServeConfig

INSTALL_HINT = "fnnkit serve needs its extra (uvicorn, starlette, Ray Serve): pip install 'fnnkit[serve]'"
LOCAL_OBJECT_STORE = 128 * 2**20  # the service moves small arrays; Ray's default reserves 30% of RAM
CONNECT_TIMEOUT_S = 60.0  # joining a cluster: reaching it, and Ray's own handshake
REACH_TIMEOUT_S = 5.0  # the TCP probe before Ray is asked to connect (Ray itself retries for minutes)
STOP_TIMEOUT_S = 60.0  # deleting our application / shutting down our own Ray
WATCH_EVERY_S = 5.0  # how often a running service checks that its application still exists
AUTH_HINT = (
    "if the cluster uses token authentication, set RAY_AUTH_MODE=token and the cluster's token "
    "(RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) or pass --ray-token-file; see docs/guide.md"
)


class ServeUnavailable(FnnkitError):
    """Ray Serve is not installed, or the cluster / port it was pointed at cannot be used."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    prefix: str = ""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.prefix}"


def require_ray() -> None:
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.serve") is None:
        raise ServeUnavailable(INSTALL_HINT)


def check_address(address: str) -> tuple[str, int] | None:
    """(host, port) to probe for ``host:port`` / ``ray://host:port``; None for ``auto``. Refuses anything else."""
    if address == "auto":
        return None
    parts = urlsplit(address if "://" in address else f"gcs://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("gcs", "ray") or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigError(f"--address {address!r}: expected auto, host:6379 (the head's GCS) or ray://host:10001")
    return parts.hostname, port


def use_token_file(path: Path) -> None:
    """``--ray-token-file``: Ray's token authentication with this file (RAY_AUTH_MODE / RAY_AUTH_TOKEN_PATH)."""
    from fnnkit.store import read_regular

    token = read_regular(path, limit=4096, what="--ray-token-file").strip()
    if not token or not token.isascii() or any(c < 0x21 for c in token):
        raise ConfigError(
            f"--ray-token-file {path}: expected one line holding the cluster's token (`ray get-auth-token`)"
        )
    os.environ.pop("RAY_AUTH_TOKEN", None)  # it would take precedence over the file
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)  # absolute: made so where the CLI parsed it


def isolate_ray_processes(private: str) -> None:
    """What Ray's processes inherit from this one carries no foreign code.

    Ray starts its GCS, raylet, agents and workers with this process's environment and working
    directory, and puts the driver's current directory on every worker's ``sys.path``. So before
    Ray starts: ``PYTHON*`` variables are removed, the working directory becomes the private
    folder ``private``, and ``sys.path`` loses the current directory and ``PYTHONPATH``'s entries.
    """
    foreign = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    foreign |= {os.path.abspath(os.curdir)}
    for key in [k for k in os.environ if k.upper().startswith("PYTHON")]:
        del os.environ[key]
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) not in foreign]
    os.chdir(private)


@contextlib.contextmanager
def _bounded(seconds: float, what: str):
    """Raise ServeUnavailable naming ``what`` if the block runs longer than ``seconds`` (main thread only)."""

    def expired(signum, frame):  # noqa: ARG001 - signal handler signature
        raise ServeUnavailable(f"{what}: no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _probe(host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=REACH_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ServeUnavailable(
            f"cannot reach Ray at {host}:{port} ({reason} within {REACH_TIMEOUT_S:g} s): "
            "is the cluster's head running there (`ray start --head`), and is the address right?"
        ) from None


@dataclass
class RayRuntime:
    """One fnnkit application on Ray: what it created is remembered, and only that is removed."""

    address: str | None  # None: start Ray here, loopback only, owned by fnnkit
    num_cpus: int | None = None
    started_ray: bool = False  # fnnkit started this Ray: shutting it down harms no one else
    app: str | None = None  # the application fnnkit deployed (or was deploying)
    say: Callable[[str], None] = print  # one-line remarks for the user (an ignored --port), shown at once
    _private: tempfile.TemporaryDirectory | None = None

    def start(self) -> None:
        """Join ``address`` or start a local Ray; bounded, and isolated from the working directory."""
        require_ray()
        target = check_address(self.address) if self.address else None
        if target:
            _probe(*target)
        import ray

        self._private = tempfile.TemporaryDirectory(prefix="fnnkit-ray-")
        isolate_ray_processes(self._private.name)
        kwargs = {"address": self.address} if self.address else {
            "num_cpus": self.num_cpus, "object_store_memory": LOCAL_OBJECT_STORE, "include_dashboard": False,
        }  # fmt: skip
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        where = self.address or "a local Ray"
        try:
            with _bounded(CONNECT_TIMEOUT_S, f"starting or joining {where}"):
                ray.init(log_to_driver=False, ignore_reinit_error=True, **kwargs)
        except SystemExit as exc:  # Ray's own SIGTERM handler during init exits; make it a clean stop
            raise Interrupted(f"interrupted while starting Ray (signal {exc.code})") from None
        except ServeUnavailable as exc:  # the time bound: Ray retries an unauthenticated handshake silently
            raise ServeUnavailable(f"{exc}; {AUTH_HINT}" if self.address else str(exc)) from None
        except Exception as exc:  # ConnectionError, RuntimeError, AuthenticationError, ...
            line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            hint = f"; {AUTH_HINT}" if self.address else ""
            raise ServeUnavailable(f"cannot start or reach Ray ({where}): {line}{hint}") from None
        finally:
            for sig, handler in handlers.items():  # Ray replaces SIGTERM's handler: fnnkit's own comes back
                signal.signal(sig, handler)
        self.started_ray = self.address is None

    def deploy(self, config: ServeConfig, host: str, port: int) -> Endpoint:
        """Deploy ``config`` under its own name and route; refuse to replace anything already there."""
        from ray import serve
        from ray.serve.context import _get_global_client

        from fnnkit.serve.app import build_app

        serve.start(http_options={"host": host, "port": port})
        client = _get_global_client()
        http = client.http_config  # cluster-wide: set by whoever started Serve on this cluster first
        if (http.host, http.port) != (host, port):
            self.say(
                f"--host/--port {host}:{port} ignored: Serve on this cluster already listens on "
                f"{http.host}:{http.port} (its HTTP options are cluster-wide)"
            )
        for name, app in client.get_serve_details().get("applications", {}).items():
            if name == config.app_name or app.get("route_prefix") == config.route_prefix:
                raise ServeUnavailable(
                    f"route {config.route_prefix} (application {config.app_name}) is taken on this cluster by "
                    f"application {name!r} at {app.get('route_prefix')}: choose another --route-prefix"
                )
        self.app = config.app_name
        try:
            with _bounded(STOP_TIMEOUT_S * 5, f"deploying {config.app_name}"):
                serve.run(build_app(config), name=config.app_name, route_prefix=config.route_prefix, blocking=False)
        except ServeUnavailable:
            raise
        except Exception as exc:  # a replica constructor failed, Serve refused the route, ...
            raise ServeUnavailable(f"deploying {config.app_name} failed: {_last_line(exc)}") from None
        shown = "127.0.0.1" if http.host in ("0.0.0.0", "::") else http.host
        return Endpoint(shown, http.port, config.route_prefix)

    @property
    def proxy_is_here(self) -> bool:
        """Whether Serve's HTTP proxy runs on this machine (a local Ray, or a head joined at a loopback address)."""
        target = check_address(self.address) if self.address else None
        return target is None or target[0] in ("127.0.0.1", "localhost", "::1")

    def watch(self) -> None:
        """Return only when the application is gone or unhealthy: someone else deleted it, or Ray went away."""
        from ray import serve

        while True:
            time.sleep(WATCH_EVERY_S)
            try:
                apps = serve.status().applications
            except Exception as exc:
                raise ServeUnavailable(f"lost the connection to Ray: {_last_line(exc)}") from None
            if self.app not in apps:
                self.app = None  # nothing of ours to delete any more
                raise ServeUnavailable("the application was deleted from the cluster by someone else; stopping")

    def stop(self) -> str:
        """Delete our application (never another's); shut Ray down only if fnnkit started it. Bounded.

        Returns what was removed, in words for the user's last line."""
        handlers = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        removed = "Ray had not started"
        try:
            import ray

            if not ray.is_initialized():
                return removed
            from ray import serve

            if self.started_ray:
                with contextlib.suppress(Exception), _bounded(STOP_TIMEOUT_S, "shutting down Serve"):
                    serve.shutdown()  # the Ray fnnkit started holds nothing but this application
                removed = "the Ray it started on this machine is shut down"
            elif self.app:
                removed = f"application {self.app} is deleted from the cluster; other applications and Ray keep running"
                try:
                    with _bounded(STOP_TIMEOUT_S, f"deleting application {self.app}"):
                        serve.delete(self.app)
                except Exception as exc:
                    self.say(f"could not delete application {self.app}: {_last_line(exc)}")
                    removed = f"application {self.app} could not be deleted (see above); nothing else was touched"
            else:
                removed = "nothing of fnnkit's was deployed; the cluster is untouched"
            self.app = None
            ray.shutdown()  # a joined cluster: this disconnects; our own: its processes exit
            return removed
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            if self._private is not None:
                os.chdir(tempfile.gettempdir())
                self._private.cleanup()
                self._private = None


def _last_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def healthy(url: str, timeout: float = 2.0) -> bool:
    """``GET {url}/healthz`` answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False
