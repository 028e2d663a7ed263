"""`fnnkit serve`: a verified model behind HTTP on Ray Serve (locally, or on a Ray cluster with --address)."""

from __future__ import annotations

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
    config = ServeConfig(str(model.folder.resolve()), backend, replicas, max_batch, batch_wait_ms)
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


__all__ = ["serve"]
