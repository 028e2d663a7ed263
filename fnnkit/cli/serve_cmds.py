"""`fnnkit serve`: a verified model behind HTTP on Ray Serve (locally, or on a Ray cluster with --address)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from fnnkit.cli import app, console
from fnnkit.cli.options import ARTIFACTS, TRAINED_DATASET


@app.command()
def serve(
    variant: str = typer.Option("C", "--variant", "-v", help="A, B, C, D or E: one deployment per model."),
    dataset: str = TRAINED_DATASET,
    backend: str = typer.Option("onnxruntime", "--backend", "-b", help="Any CPU backend of `fnnkit bench`."),
    replicas: int = typer.Option(1, "--replicas", min=1, max=256, help="Replicas Ray Serve keeps running."),
    max_batch: int = typer.Option(256, "--max-batch", min=1, max=4096, help="Requests merged into one model call."),
    batch_wait_ms: float = typer.Option(
        1.0, "--batch-wait-ms", min=0.0, max=1000.0, help="How long a batch waits to fill."
    ),
    address: str | None = typer.Option(
        None, "--address", help="auto | ray://host:10001: join that Ray cluster (default: start Ray here)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="HTTP bind address (0.0.0.0 exposes it to the network)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    num_cpus: int | None = typer.Option(None, "--num-cpus", min=1, help="CPUs of a local Ray (default: all)."),
    replica_cpus: float = typer.Option(0.5, "--replica-cpus", help="Ray CPUs reserved per replica."),
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
    requests: int = typer.Option(2000, "--requests", min=1, max=10_000_000, help="Stop after this many requests."),
    seconds: float = typer.Option(30.0, "--seconds", min=0.1, max=3600.0, help="...or after this long."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, max=256, help="Clients, each waiting for its answer."),
    batch: int = typer.Option(1, "--batch", min=1, max=4096, help="Samples per request (MNIST sample test digits)."),
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
