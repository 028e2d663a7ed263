"""The Ray Serve application: one deployment per model, requests batched by Ray Serve's own @serve.batch.

Imported only by `fnnkit serve` and its tests (it needs ``ray[serve]``); replicas import it too,
so it holds nothing but the deployment. Every replica loads the model through the backend
registry, which sha256-checks the file against export.json before parsing it: a file that
`fnnkit verify` refuses is never served.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from fnnkit.serve.app_config import ServeConfig
from fnnkit.serve.payload import MAX_BODY, PayloadError, parse


@serve.deployment(max_ongoing_requests=512, health_check_period_s=2)
class ModelService:
    """POST /predict (JSON pixels or an image), GET /healthz, GET /metadata."""

    def __init__(self, config: dict) -> None:
        from fnnkit.predict.run import load_model

        self.config = ServeConfig(**config)
        folder = Path(self.config.folder)
        root, dataset, variant = folder.parent.parent, folder.parent.name, folder.name
        self.model = load_model(root, variant, dataset, self.config.backend, self.config.threads)
        self.infer.set_max_batch_size(self.config.max_batch)
        self.infer.set_batch_wait_timeout_s(self.config.batch_wait_ms / 1000)
        card = self.model.card
        self.metadata = {
            "model": f"fnnkit_{card['dataset']['name']}_{card['variant']['name']}",
            "variant": card["variant"]["name"],
            "dataset": card["dataset"]["name"],
            "backend": self.config.backend,
            "test_accuracy": card.get("test_accuracy"),
            "weights_sha256": card["weights"]["sha256"],
            "classes": list(self.model.classes),
            "max_batch": self.config.max_batch,
            "batch_wait_ms": self.config.batch_wait_ms,
        }

    @serve.batch(max_batch_size=256, batch_wait_timeout_s=0.001)
    async def infer(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """Many requests, one model call: concatenate, run, split back."""
        from fnnkit.predict.run import probabilities

        sizes = [len(b) for b in batches]
        probs = probabilities(self.model, np.concatenate(batches).reshape(-1, 28, 28))
        return np.split(probs, np.cumsum(sizes)[:-1])

    async def __call__(self, request: Request) -> JSONResponse:
        path, method = request.url.path.rstrip("/") or "/", request.method
        if path == "/healthz" and method == "GET":
            return JSONResponse({"status": "ok", "model": self.metadata["model"]})
        if path == "/metadata" and method == "GET":
            return JSONResponse(self.metadata)
        if path != "/predict":
            return _error(f"no route {method} {path}; use POST /predict, GET /healthz or GET /metadata", 404)
        if method != "POST":
            return _error(f"{method} /predict is not allowed; POST a JSON body or an image", 405)
        try:
            body = await _bounded_body(request)
            x, steps = parse(body, request.headers.get("content-type", ""))
        except PayloadError as exc:
            return _error(str(exc), exc.status)
        probs = await self.infer(x)
        return JSONResponse({"model": self.metadata["model"], "predictions": self._rows(probs, steps)})

    def _rows(self, probs: np.ndarray, steps: tuple[str, ...]) -> list[dict]:
        rows = []
        for p in probs:
            order = np.argsort(-p, kind="stable")[: self.config.top]
            top = [{"class": self.model.classes[i], "probability": round(float(p[i]), 6)} for i in order]
            rows.append({"class": top[0]["class"], "probability": top[0]["probability"], "top": top})
        if steps:
            rows[0]["normalisation"] = list(steps)
        return rows


async def _bounded_body(request: Request) -> bytes:
    """The body, refused as soon as it exceeds MAX_BODY (a declared length is checked before reading)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadError(f"body of {int(declared):,} bytes exceeds the {MAX_BODY:,}-byte limit", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadError(f"body exceeds the {MAX_BODY:,}-byte limit", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def app_name(config: ServeConfig) -> str:
    """fnnkit_<dataset>_<variant>: the application and deployment name, as in the Triton repository."""
    return f"fnnkit_{Path(config.folder).parent.name}_{Path(config.folder).name}"


def build_app(config: ServeConfig):
    """The application `serve.run` deploys: ``config.replicas`` copies of one model's deployment."""
    options = {"name": app_name(config), "num_replicas": config.replicas}
    return ModelService.options(**options, ray_actor_options={"num_cpus": config.replica_cpus}).bind(asdict(config))
