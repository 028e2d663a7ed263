"""Classify samples with any backend from the registry, after its sha256-checked load.

numpy end to end: with an ONNX Runtime or OpenVINO backend, nothing on this path imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fnnkit.predict.inputs import Sample
from fnnkit.predict.normalize import SIDE

CHUNK = 4096  # samples per backend call: bounds memory for a large IDX file


@dataclass(frozen=True)
class Prediction:
    name: str
    top: tuple[tuple[str, float], ...]  # (class name, probability), most likely first
    steps: tuple[str, ...]


@dataclass(frozen=True)
class Model:
    """A loaded predictor and what the user is told about it."""

    predictor: object  # fnnkit.backends.Predictor
    classes: tuple[str, ...]
    card: dict
    folder: Path


def load_model(
    artifacts: Path, variant: str, dataset: str, backend: str, threads: int = 1, device: str = "cpu"
) -> Model:
    """The variant's verified artifact opened by ``backend`` on ``device`` (a missing export names the command
    that makes it). ``Predictor.predict`` is host to host, so callers hand CPU arrays either way."""
    from fnnkit.backends import get_backend
    from fnnkit.errors import ArtifactError, BackendUnavailable
    from fnnkit.store import Artifact
    from fnnkit.variants import get_spec

    name = get_spec(variant).name
    artifact = Artifact.find(artifacts, name, dataset)
    folder = artifact.folder
    chosen = get_backend(backend)
    ok, why = chosen.available(device)  # a backend that cannot run here is named, not exported for
    if not ok:
        raise BackendUnavailable(f"backend {chosen.name} cannot run here on {device}: {why}")
    missing = chosen.missing(folder, device)
    if missing:
        raise ArtifactError(missing)
    card = artifact.card_json
    classes = tuple(str(c) for c in card["dataset"].get("classes") or range(10))
    return Model(chosen.load(folder, device, threads), classes, card, folder)


def probabilities(model: Model, pixels: np.ndarray) -> np.ndarray:
    """Softmax of the logits for float32 [N, 28, 28] pixels in [0, 1], in bounded chunks."""
    out = []
    for start in range(0, len(pixels), CHUNK):
        x = np.ascontiguousarray(pixels[start : start + CHUNK], dtype=np.float32).reshape(-1, SIDE * SIDE)
        out.append(softmax(model.predictor.predict(x)))
    return np.concatenate(out) if out else np.zeros((0, len(model.classes)), np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32, shifted by the row maximum so no exponent overflows."""
    shifted = logits.astype(np.float32) - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    return shifted / shifted.sum(axis=1, keepdims=True)


def predict(model: Model, samples: list[Sample], top: int) -> list[Prediction]:
    """Top-``top`` classes for every sample that has pixels, in order."""
    good = [s for s in samples if s.pixels is not None]
    if not good:
        return []
    probs = probabilities(model, np.stack([s.pixels for s in good]))
    results = []
    for sample, p in zip(good, probs, strict=True):
        order = np.argsort(-p, kind="stable")[:top]
        results.append(Prediction(sample.name, tuple((model.classes[i], float(p[i])) for i in order), sample.steps))
    return results
