"""`fnnkit export --format triton --out DIR`: verified ONNX exports -> a Triton model repository."""

from __future__ import annotations

from pathlib import Path

from fnnkit.cli.render import console, triton_table
from fnnkit.errors import ConfigError


def export_triton(variant: str, dataset: str, artifacts: Path, out: Path | None, device: str, opset: int) -> None:
    """Export (or reuse) onnx and onnx-int8 for each variant, then write one Triton model per file under ``out``."""
    from fnnkit.export import export_variant
    from fnnkit.export.triton import TritonSettings, write_repository
    from fnnkit.store import find_variant_dir
    from fnnkit.variants import resolve_variants

    if out is None:
        raise ConfigError("--format triton needs --out DIR: the Triton model repository to write")
    settings = TritonSettings(kind="KIND_GPU" if device == "cuda" else "KIND_CPU")
    models = []
    for spec in resolve_variants(variant):
        folder = find_variant_dir(artifacts, spec.name, dataset)
        export_variant(folder, "onnx,onnx-int8", device="cpu", opset=opset)  # reused when up to date
        models += write_repository(folder, out, settings)
    console.print(triton_table(out, models, settings.instances))
    console.print(f"check it with: fnnkit verify {out}   serve it with: tritonserver --model-repository {out}")
