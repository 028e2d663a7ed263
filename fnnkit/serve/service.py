"""One model behind HTTP, whatever the engine: the routes, the answers, the refusals.

Both engines run this class: the local one (uvicorn workers, ``fnnkit.serve.local``) and Ray
Serve's replicas (``fnnkit.serve.app``). They differ only in how a batch reaches the model,
so routes, payloads, verification and error answers are the same by construction.

The model is loaded through the backend registry, which sha256-checks the file against
export.json before parsing it. A worker or replica whose file is refused (tampered with after
the service started, say) does not crash into a restart loop that leaves clients waiting: it
stays up and answers every request 503 with the reason, at once.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse

from fnnkit.backends.base import set_threads
from fnnkit.errors import FnnkitError
from fnnkit.serve.app_config import ServeConfig
from fnnkit.serve.payload import MAX_BODY, PayloadError, parse
from fnnkit.store import Artifact

Infer = Callable[[np.ndarray], Awaitable[np.ndarray]]  # float32 [N, 784] -> probabilities [N, classes]


class Service:
    """``{prefix}/predict`` (POST), ``{prefix}/healthz`` and ``{prefix}/metadata`` (GET) for one model."""

    def __init__(self, config: ServeConfig | dict) -> None:
        from fnnkit.predict.run import load_model

        self.config = config if isinstance(config, ServeConfig) else ServeConfig(**config)
        prefix = self.config.route_prefix
        self.routes = {f"{prefix}/predict": "predict", f"{prefix}/healthz": "healthz", f"{prefix}/metadata": "metadata"}
        artifact = Artifact.at(self.config.folder)
        self.name = f"fnnkit_{artifact.dataset}_{artifact.variant}"
        try:
            self.model = load_model(
                artifact.root, artifact.variant, artifact.dataset, self.config.backend, self.config.threads
            )
            self.refusal = ""
        except FnnkitError as exc:  # the file changed since the service started: refuse, do not crash-loop
            self.model, self.refusal = None, f"model refused: {exc}"
        self.metadata = self._metadata()
        self._threads_set = threading.local()  # per thread: a Ray Serve replica runs requests in a thread of its own

    def _metadata(self) -> dict:
        if self.model is None:
            return {"model": self.name, "status": "refusing", "error": self.refusal}
        card = self.model.card
        return {
            "model": self.name,
            "variant": card["variant"]["name"],
            "dataset": card["dataset"]["name"],
            "backend": self.config.backend,
            "route_prefix": self.config.route_prefix,
            "test_accuracy": card.get("test_accuracy"),
            "weights_sha256": card["weights"]["sha256"],
            "classes": list(self.model.classes),
            "max_batch": self.config.max_batch,
            "batch_wait_ms": self.config.batch_wait_ms,
        }

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """float32 [N, 784] in [0, 1] -> probabilities [N, classes]; one model call per 4,096 samples."""
        from fnnkit.predict.run import probabilities

        if not getattr(self._threads_set, "done", False):  # OpenMP's thread count is per thread (set_threads)
            set_threads(self.config.threads)
            self._threads_set.done = True
        return probabilities(self.model, x.reshape(-1, 28, 28))

    async def respond(self, request: Request, infer: Infer) -> JSONResponse:
        """The answer to one request; ``infer`` is how this engine runs the model (batched or not)."""
        scope = request.scope
        path, root = scope["path"], scope.get("root_path", "")
        if root and not path.startswith(root):  # an engine that strips its mount point from the path
            path = root + path
        route, method = self.routes.get(path.rstrip("/")), request.method
        if route is None:
            return error(f"no route {method} {path}; use {self._usage()}", 404)
        if (method != "POST") if route == "predict" else (method != "GET"):
            return error(f"{method} {path} is not allowed; use {self._usage()}", 405)
        if self.model is None:
            return error(self.refusal, 503)
        if route == "healthz":
            return JSONResponse({"status": "ok", "model": self.name})
        if route == "metadata":
            return JSONResponse(self.metadata)
        try:
            body = await bounded_body(request)
            x, steps = parse(body, request.headers.get("content-type", ""))
        except PayloadError as exc:
            return error(str(exc), exc.status)
        probs = await infer(x)
        return JSONResponse({"model": self.name, "predictions": self._rows(probs, steps)})

    def _usage(self) -> str:
        prefix = self.config.route_prefix
        return f"POST {prefix}/predict, GET {prefix}/healthz or GET {prefix}/metadata"

    def _rows(self, probs: np.ndarray, steps: tuple[str, ...]) -> list[dict]:
        rows = []
        for p in probs:
            order = np.argsort(-p, kind="stable")[: self.config.top]
            top = [{"class": self.model.classes[i], "probability": round(float(p[i]), 6)} for i in order]
            rows.append({"class": top[0]["class"], "probability": top[0]["probability"], "top": top})
        if steps:
            rows[0]["normalisation"] = list(steps)
        return rows


async def bounded_body(request: Request) -> bytes:
    """The body, refused as soon as it exceeds MAX_BODY (a declared length is checked before reading)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and (len(declared) > 12 or int(declared) > MAX_BODY):  # 12 digits: no huge-int parse
        raise PayloadError(f"body of {declared[:20]} bytes exceeds the {MAX_BODY:,}-byte limit", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadError(f"body exceeds the {MAX_BODY:,}-byte limit", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
