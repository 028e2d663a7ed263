"""`fnnkit serve` (a verified model behind HTTP: uvicorn here, Ray Serve on a cluster) and `fnnkit serve-load`."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

from fnnkit.cli import app
from fnnkit.cli.options import ARTIFACTS, TRAINED_DATASET, input_path, number
from fnnkit.cli.render import console, err_console
from fnnkit.errors import ConfigError, Interrupted

ENGINES = ("auto", "local", "ray")


class _Stopped(Interrupted):
    """Ctrl-C or SIGTERM while serving: a service is stopped, not a file half-written; exit 130 / 0."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Stopped(signum)


@app.command()
def serve(
    ctx: typer.Context,
    variant: str = typer.Option("C", "--variant", "-v", help="A, B, C, D or E: one service per model."),
    dataset: str = TRAINED_DATASET,
    backend: str = typer.Option(
        "onnxruntime",
        "--backend",
        "-b",
        help="A CPU backend of `fnnkit bench` whose answers do not depend on the batch.",
    ),
    engine: str = typer.Option(
        "auto", "--engine", help="local (uvicorn workers) | ray (Ray Serve) | auto: ray with --address, else local."
    ),
    workers: int | None = number(
        None, "--workers", "Local engine: worker processes (default: the CPUs here).", 1, 256, kind=int
    ),
    route_prefix: str = typer.Option(
        "", "--route-prefix", help="Routes live under it \\[default: /fnnkit_<dataset>_<variant>].", show_default=False
    ),
    replicas: int = number(1, "--replicas", "Ray engine: replicas Ray Serve keeps running.", 1, 256),
    max_batch: int = number(256, "--max-batch", "Ray engine: requests merged into one model call.", 1, 4096),
    batch_wait_ms: float = number(1.0, "--batch-wait-ms", "Ray engine: how long a batch waits to fill, ms.", 0, 1000),
    address: str | None = typer.Option(
        None, "--address", help="auto | host:6379 | ray://host:10001: deploy onto that Ray cluster (Ray engine)."
    ),
    ray_token_file: Path | None = input_path(
        "--ray-token-file", "The cluster's token, for Ray token authentication (sets RAY_AUTH_MODE=token)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="HTTP bind address (0.0.0.0 exposes it to the network)."),
    port: int = number(8000, "--port", "HTTP port.", 1, 65535),
    num_cpus: int | None = number(None, "--num-cpus", "CPUs of a Ray started here (default: all).", 1, 4096, kind=int),
    replica_cpus: float = number(0.5, "--replica-cpus", "Ray CPUs reserved per replica.", 0, 64, above=True),
    config_file: Path | None = input_path(
        "--config", "A deployment `fnnkit tune --write-serve` wrote; options given here still win."
    ),
    artifacts: Path = ARTIFACTS,
) -> None:
    """Serve a verified model: POST <prefix>/predict (JSON pixels or an image), GET <prefix>/healthz, <prefix>/metadata.

    Example: fnnkit serve --variant C --port 8000          (this machine: uvicorn workers)
             fnnkit serve --variant C --address auto       (a running Ray cluster: Ray Serve)
    """
    from fnnkit.env import usable_cpus
    from fnnkit.predict.run import load_model
    from fnnkit.serve.app_config import ServeConfig

    if config_file is not None:
        variant, dataset, backend, workers, replicas, max_batch, batch_wait_ms = _from_file(
            ctx, config_file, variant, dataset, backend, workers, replicas, max_batch, batch_wait_ms
        )
    if engine not in ENGINES:
        raise ConfigError(f"--engine {engine!r}: choose one of {', '.join(ENGINES)}")
    chosen = "ray" if engine == "ray" or (engine == "auto" and address) else "local"
    if chosen == "local" and address:
        raise ConfigError("--engine local serves on this machine; drop --address, or use --engine ray")
    if chosen == "ray":
        from fnnkit.serve.runtime import require_ray, use_token_file

        if ray_token_file is not None:  # before Ray is imported: its C++ core reads RAY_AUTH_* once
            use_token_file(ray_token_file)
        require_ray()  # the one line that says how to install it
    check_batch_invariant(backend)
    model = load_model(artifacts, variant, dataset, backend)  # verified here first: a bad file never reaches a worker
    config = ServeConfig(
        str(model.folder.resolve()), backend, replicas, max_batch, batch_wait_ms, replica_cpus=replica_cpus,
        route_prefix=route_prefix,
    )  # fmt: skip
    del model
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    removed: list[str] = []  # what stopping took away, said in the last line
    try:
        if chosen == "local":
            _serve_local(config, host, port, workers or usable_cpus(), removed)
        else:
            _serve_ray(config, host, port, address, num_cpus, removed)
    except _Stopped as stop:
        console.print(
            f"stopped serving {config.app_name} on {stop}: {'; '.join(removed) or 'nothing had started'}",
            highlight=False,
        )
        if stop.signum == signal.SIGINT:
            raise typer.Exit(Interrupted.exit_code) from None  # 130, as shells expect after Ctrl-C
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _from_file(ctx: typer.Context, path: Path, *given):
    """The tuned deployment's values for every option left at its default; a CPU unlike the tune's is said."""
    from fnnkit.serve.app_config import machine_difference, read_serve_file

    tuned = read_serve_file(path)
    names = ("variant", "dataset", "backend", "workers", "replicas", "max_batch", "batch_wait_ms")
    values = (tuned.variant, tuned.dataset, tuned.backend, tuned.workers, tuned.workers, tuned.max_batch,
              tuned.batch_wait_ms)  # fmt: skip
    chosen = [
        value if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") == "DEFAULT" else mine
        for name, value, mine in zip(names, values, given, strict=True)
    ]
    if difference := machine_difference(tuned.made_on):
        err_console.print(
            f"[yellow]note:[/] {path} was tuned on another CPU ({difference}): its figures may not hold here",
            highlight=False,
        )
    return chosen


def check_batch_invariant(backend: str) -> None:
    """Serve only backends whose answer to a sample does not depend on the requests batched with it."""
    from fnnkit.backends import BACKENDS, get_backend

    chosen = get_backend(backend)
    if not chosen.batch_invariant:
        fixed = [b.name for b in BACKENDS.values() if b.batch_invariant and b.precision == chosen.precision]
        instead = f"; use {', '.join(fixed)}" if fixed else ""
        raise ConfigError(
            f"--backend {chosen.name} answers a sample differently depending on its batch ({chosen.summary}): "
            f"a client's answer would depend on who else called at the same moment{instead}"
        )


def _serve_local(config, host: str, port: int, workers: int, removed: list[str]) -> None:
    import importlib.util

    from fnnkit.serve.local import LocalEngine
    from fnnkit.serve.runtime import INSTALL_HINT, ServeUnavailable

    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("starlette") is None:
        raise ServeUnavailable(INSTALL_HINT)

    engine = LocalEngine(config, host, port, workers)
    console.print(f"starting {workers} worker(s) ...")
    try:
        engine.start()
        url = f"http://{host}:{engine.port}{config.route_prefix}"
        console.print(
            f"[green]serving[/] {config.app_name} ({config.backend}, {workers} uvicorn worker(s)) at [bold]{url}[/]: "
            "POST /predict, GET /healthz, GET /metadata. Ctrl-C stops it.",
            highlight=False,
        )
        engine.supervise()
    finally:
        engine.stop()
        removed.append(f"its {workers} worker(s) are stopped and the port is closed")


def _serve_ray(config, host: str, port: int, address: str | None, num_cpus: int | None, removed: list[str]) -> None:
    from fnnkit.env import usable_cpus
    from fnnkit.serve.runtime import RayRuntime, ServeUnavailable, healthy

    if address is None:
        config.check_fits(num_cpus or usable_cpus())
    runtime = RayRuntime(
        address, num_cpus, say=lambda note: err_console.print(f"[yellow]note:[/] {note}", highlight=False)
    )
    console.print(f"starting Ray {'at ' + address if address else 'on this machine'} ...")
    try:
        runtime.start()
        endpoint = runtime.deploy(config, host, port)
        if runtime.proxy_is_here and not healthy(endpoint.url, timeout=10):
            raise ServeUnavailable(f"{endpoint.url}/healthz does not answer 200: the replicas refuse the model file")
        console.print(
            f"[green]serving[/] {config.app_name} ({config.backend}, {config.replicas} replica(s), batches up to "
            f"{config.max_batch}, wait {config.batch_wait_ms} ms) on Ray Serve at [bold]{endpoint.url}[/]: "
            "POST /predict, GET /healthz, GET /metadata. Ctrl-C stops it.",
            highlight=False,
        )
        runtime.watch()
    finally:
        removed.append(runtime.stop())


@app.command("serve-load")
def serve_load(
    url: str = typer.Option(
        "http://127.0.0.1:8000/fnnkit_mnist_C", "--url", help="A running `fnnkit serve`: its address and route prefix."
    ),
    qps: float = number(2000.0, "--qps", "Poisson arrival rate offered, requests/s.", 0, 1e6, above=True),
    latency_bound_ms: float = number(
        10.0, "--latency-bound-ms", "The p99 bound LoadGen checks, ms.", 0, 60_000, above=True
    ),
    seconds: float = number(10.0, "--seconds", "LoadGen's minimum duration.", 0.5, 600),
    find_peak: bool = typer.Option(False, "--find-peak", help="Search the highest rate whose p99 meets the bound."),
    connections: int = number(32, "--connections", "Keep-alive connections the client keeps open.", 1, 1024),
    batch: int = number(1, "--batch", "Samples per request (MNIST sample test digits).", 1, 4096),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a URL that is not loopback."),
) -> None:
    """MLPerf LoadGen against POST <url>/predict: Poisson arrivals, p50/p99 from arrival to answer, a p99 verdict.

    Example: fnnkit serve-load --url http://127.0.0.1:8000/fnnkit_mnist_C --qps 3000 --latency-bound-ms 10
    """
    from fnnkit.data import load_dataset, preprocess
    from fnnkit.serve.load import LoadTarget, find_peak_rate, run_server_load, sample_body

    pixels = preprocess(load_dataset("mnist-sample").test_x[:batch]).numpy()
    target = LoadTarget.parse(url, sample_body(pixels), allow_remote=allow_remote)
    if find_peak:
        result, tried = find_peak_rate(target, latency_bound_ms, seconds, connections, start_qps=qps)
        for step in tried:
            console.print(f"  {step.line()}", highlight=False)
    else:
        result = run_server_load(target, qps, latency_bound_ms, seconds, connections)
    console.print(result.line(), highlight=False)
    if result.failed:
        raise typer.Exit(1)


__all__ = ["check_batch_invariant", "serve", "serve_load"]
