"""`fnnkit serve`: a verified model behind HTTP on Ray Serve (locally, or on a Ray cluster with --address)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from fnnkit.cli import app
from fnnkit.cli.options import ARTIFACTS, TRAINED_DATASET, number
from fnnkit.cli.render import console


@app.command()
def serve(
    variant: str = typer.Option("C", "--variant", "-v", help="A, B, C, D or E: one deployment per model."),
    dataset: str = TRAINED_DATASET,
    backend: str = typer.Option("onnxruntime", "--backend", "-b", help="Any CPU backend of `fnnkit bench`."),
    replicas: int = number(1, "--replicas", "Replicas Ray Serve keeps running.", 1, 256),
    max_batch: int = number(256, "--max-batch", "Requests merged into one model call.", 1, 4096),
    batch_wait_ms: float = number(1.0, "--batch-wait-ms", "How long a batch waits to fill, ms.", 0, 1000),
    address: str | None = typer.Option(
        None, "--address", help="auto | ray://host:10001: join that Ray cluster (default: start Ray here)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="HTTP bind address (0.0.0.0 exposes it to the network)."),
    port: int = number(8000, "--port", "HTTP port.", 1, 65535),
    num_cpus: int | None = number(None, "--num-cpus", "CPUs of a local Ray (default: all).", 1, 4096, kind=int),
    replica_cpus: float = number(0.5, "--replica-cpus", "Ray CPUs reserved per replica.", 0, 64, above=True),
    artifacts: Path = ARTIFACTS,
) -> None:
    """Serve a verified model: POST /predict (JSON pixels or an image), GET /healthz, GET /metadata.

    Example: fnnkit serve --variant C --replicas 2 --port 8000
    """
    from fnnkit.predict.run import load_model
    from fnnkit.serve.app_config import ServeConfig
    from fnnkit.serve.runtime import Endpoint, deploy, require_ray, shutdown, start_ray

    require_ray()  # before anything else: the one line that says how to install it
    model = load_model(artifacts, variant, dataset, backend)  # verified here first: a bad file never reaches Ray
    config = ServeConfig(
        str(model.folder.resolve()), backend, replicas, max_batch, batch_wait_ms, replica_cpus=replica_cpus
    )
    if address is None:
        config.check_fits(num_cpus or os.cpu_count() or 1)
    endpoint = Endpoint(host, port)
    console.print(f"starting Ray {'at ' + address if address else 'locally'} ...")
    start_ray(address, num_cpus)
    try:
        name = deploy(config, endpoint)
        console.print(
            f"[green]serving[/] {name} ({backend}, {replicas} replica(s), batches up to {max_batch}, "
            f"wait {batch_wait_ms} ms) at [bold]{endpoint.url}[/]: POST /predict, GET /healthz, GET /metadata. "
            "Ctrl-C stops it.",
            highlight=False,
        )
        while True:
            time.sleep(3600)
    finally:
        shutdown()


@app.command("serve-load")
def serve_load(
    url: str = typer.Option("http://127.0.0.1:8000", "--url", help="A running `fnnkit serve`."),
    requests: int = number(2000, "--requests", "Stop after this many requests.", 1, 10_000_000),
    seconds: float = number(30.0, "--seconds", "...or after this long.", 0.1, 3600),
    concurrency: int = number(8, "--concurrency", "Clients, each waiting for its answer.", 1, 256),
    batch: int = number(1, "--batch", "Samples per request (MNIST sample test digits).", 1, 4096),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a URL that is not loopback."),
) -> None:
    """A bounded load test of POST /predict: p50/p99 latency and requests/s.

    Example: fnnkit serve-load --url http://127.0.0.1:8000 --requests 2000 --concurrency 8
    """
    from fnnkit.data import load_dataset, preprocess
    from fnnkit.serve.load import run_load, sample_body

    pixels = preprocess(load_dataset("mnist-sample").test_x[:batch]).numpy()
    result = run_load(
        url, sample_body(pixels), requests=requests, seconds=seconds, concurrency=concurrency,
        allow_remote=allow_remote,
    )  # fmt: skip
    s = result.summary()
    console.print(
        f"{s['ok']} of {s['sent']} requests answered in {s['seconds']} s ({concurrency} clients, batch {batch}): "
        f"[bold]{s['requests_per_s']} requests/s[/], p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms"
        + (f"; failed: {s['failed']}" if s["failed"] else ""),
        highlight=False,
    )
    if s["failed"]:
        raise typer.Exit(1)


__all__ = ["serve", "serve_load"]
