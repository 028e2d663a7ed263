"""``fnnkit bench --prepare``: make what a fresh clone lacks (train on the bundled sample, export).

Only what is missing is made: a trained variant is never retrained, and ``export_variant``
reuses every file whose weights and toolchain are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from fnnkit.backends import resolve_backends
from fnnkit.bench.config import BenchConfig
from fnnkit.data import load_dataset
from fnnkit.export import export_variant, get_format
from fnnkit.store import Artifact
from fnnkit.train import TrainConfig, train_and_save
from fnnkit.variants import get_spec

PREPARE_DATASET = "mnist-sample"  # bundled: works offline, on every machine
PREPARE_ITERATIONS = 1000  # 25 epochs of the 4,000-image sample: a few seconds, >90% test accuracy

StepFn = Callable[[str], None]  # told what is being made, one line each


def formats_needed(config: BenchConfig, device: str) -> list[str]:
    """Export formats the selected backends load on ``device``, in registry order."""
    backends = resolve_backends(list(config.backends))
    return list(dict.fromkeys(b.export_format for b in backends if b.export_format and b.available(device)[0]))


def prepare_artifacts(config: BenchConfig, on_step: StepFn | None = None) -> list[str]:
    """Train missing variants and export missing files for ``config``; returns what was done."""
    step = on_step or (lambda line: None)
    done: list[str] = []
    data = None
    dataset = config.dataset or PREPARE_DATASET
    for variant in config.variants:
        trained = Artifact.lookup(config.artifacts, variant, config.dataset)
        folder = (trained or Artifact(config.artifacts, dataset, variant)).folder
        if trained is None:
            step(f"training {variant} on {dataset} ({PREPARE_ITERATIONS} iterations)")
            data = data or load_dataset(dataset, data_dir=config.data_dir, download=False)
            train_and_save(get_spec(variant), data, config.artifacts, TrainConfig(iterations=PREPARE_ITERATIONS))
            done.append(f"trained {folder}")
        for device in config.devices:
            needed = formats_needed(config, device)
            if needed:
                step(f"exporting {variant} to {', '.join(needed)} for {device}")
                results = export_variant(
                    folder, [get_format(n) for n in needed], device=device, data_dir=config.data_dir
                )
                done += [f"{r.status} {r.path}" for r in results]
    return done
