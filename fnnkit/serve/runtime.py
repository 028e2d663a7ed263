"""Starting Ray (locally with bounded resources, or joining a cluster), deploying, and tearing down.

Kept apart from ``app`` so the CLI can say how to install Ray before anything imports it.
"""

from __future__ import annotations

import importlib.util
import urllib.request
from dataclasses import dataclass

from fnnkit.errors import ConfigError, FnnkitError

INSTALL_HINT = "fnnkit serve needs Ray Serve: pip install 'fnnkit[serve]'"
LOCAL_OBJECT_STORE = 128 * 2**20  # the service moves small arrays; Ray's default reserves 30% of RAM


class ServeUnavailable(FnnkitError):
    """Ray Serve is not installed, or the cluster / port it was pointed at cannot be used."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def require_ray() -> None:
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.serve") is None:
        raise ServeUnavailable(INSTALL_HINT)


def start_ray(address: str | None, num_cpus: int | None) -> None:
    """Join ``address`` (``auto`` or ``ray://host:10001``), or start a local Ray bounded to ``num_cpus``."""
    require_ray()
    import ray

    if address and not (address == "auto" or address.startswith(("ray://", "http://")) or ":" in address):
        raise ConfigError(f"--address {address!r}: expected auto, ray://host:10001 or host:port")
    kwargs = {"address": address} if address else {
        "num_cpus": num_cpus, "object_store_memory": LOCAL_OBJECT_STORE, "include_dashboard": False,
    }  # fmt: skip
    try:
        ray.init(log_to_driver=False, ignore_reinit_error=True, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ServeUnavailable(f"cannot start or reach Ray ({address or 'local'}): {exc}") from None


def deploy(config, endpoint: Endpoint) -> str:
    """Deploy ``config`` (a ServeConfig) behind ``endpoint``; returns the application name once replicas run."""
    from ray import serve

    from fnnkit.serve.app import app_name, build_app

    serve.start(http_options={"host": endpoint.host, "port": endpoint.port})
    name = app_name(config)
    try:
        serve.run(build_app(config), name=name, route_prefix="/", blocking=False)  # returns when replicas are up
    except RuntimeError as exc:  # a replica constructor failed: the file did not verify, the backend is missing
        raise ServeUnavailable(f"deploying {name} failed: {str(exc).strip().splitlines()[-1]}") from None
    return name


def healthy(endpoint: Endpoint, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint.url}/healthz", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def replica_actors(app_name: str) -> list:
    """Handles of the application's replica actors (for tests that kill one: Ray Serve must replace it)."""
    import ray

    names = ray.util.list_named_actors(all_namespaces=True)
    return [
        ray.get_actor(a["name"], namespace=a["namespace"])
        for a in names
        if a["name"].startswith("SERVE_REPLICA::") and f"{app_name}#" in a["name"]
    ]


def shutdown() -> None:
    """Serve, then Ray: the local cluster's processes exit with it."""
    import ray
    from ray import serve

    if ray.is_initialized():
        serve.shutdown()
        ray.shutdown()
