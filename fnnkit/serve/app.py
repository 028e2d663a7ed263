"""The Ray Serve engine: one deployment per model, requests batched by Ray Serve's own @serve.batch.

Imported only when Ray Serve is the engine (it needs ``ray[serve]``); replicas import it too, so
it holds nothing but the deployment. Routes, answers and refusals are ``Service``'s, the same
code the local engine runs.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from fnnkit.serve.app_config import ServeConfig
from fnnkit.serve.service import Service


@serve.deployment(max_ongoing_requests=512, health_check_period_s=2)
class ModelService:
    """A replica: one Service; many requests merged into one model call."""

    def __init__(self, config: dict) -> None:
        self.service = Service(config)
        self.infer.set_max_batch_size(self.service.config.max_batch)
        self.infer.set_batch_wait_timeout_s(self.service.config.batch_wait_ms / 1000)

    @serve.batch(max_batch_size=256, batch_wait_timeout_s=0.001)
    async def infer(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """Concatenate, run once, split back: each sample's answer does not depend on its batch (tested)."""
        sizes = [len(b) for b in batches]
        probs = self.service.probabilities(np.concatenate(batches))
        return np.split(probs, np.cumsum(sizes)[:-1])

    async def __call__(self, request: Request) -> JSONResponse:
        return await self.service.respond(request, self.infer)


def build_app(config: ServeConfig):
    """The application `serve.run` deploys: ``config.replicas`` copies of one model's deployment."""
    options = {"name": config.app_name, "num_replicas": config.replicas}
    return ModelService.options(**options, ray_actor_options={"num_cpus": config.replica_cpus}).bind(asdict(config))
