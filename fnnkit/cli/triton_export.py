"""`fnnkit export --format triton --out DIR`: verified ONNX exports -> a Triton model repository."""

from __future__ import annotations

from pathlib import Path

from fnnkit.cli.render import console, triton_table
from fnnkit.errors import ConfigError


def export_triton(
    variant: str, dataset: str, artifacts: Path, out: Path | None, device: str, opset: int, data_dir: Path | None
) -> None:
    """Export (or reuse) onnx and the static int8 onnx for each variant, then write one Triton model per file
    under ``out``. Every target folder is checked before any work, so a user's file in one stops the run first."""
    from fnnkit.export import export_variant
    from fnnkit.export.triton import TritonSettings, check_out, target_names, write_repository
    from fnnkit.store import ensure_writable_dir, find_variant_dir
    from fnnkit.variants import resolve_variants

    if out is None:
        raise ConfigError("--format triton needs --out DIR: the Triton model repository to write")
    settings = TritonSettings(kind="KIND_GPU" if device == "cuda" else "KIND_CPU")
    folders = [find_variant_dir(artifacts, spec.name, dataset) for spec in resolve_variants(variant)]
    check_out(out, [name for folder in folders for name in target_names(folder)])
    ensure_writable_dir(out, "--out")
    models = []
    for folder in folders:
        # reused when current; calibrating the static int8 file reads the training images from data_dir
        export_variant(folder, "onnx,onnx-int8-static", device="cpu", opset=opset, data_dir=data_dir)
        models += write_repository(folder, out, settings)
    console.print(triton_table(out, models, settings.instances))
    console.print(f"check it with: fnnkit verify {out}   serve it with: tritonserver --model-repository {out}")
