"""`fnnkit export --format triton --out DIR`: verified ONNX exports -> a Triton model repository."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from fnnkit.cli import console


def export_triton(variant: str, dataset: str, artifacts: Path, out: Path | None, device: str, opset: int) -> None:
    """Export (or reuse) onnx and onnx-int8 for each variant, then write one Triton model per file under ``out``."""
    from fnnkit.errors import ConfigError
    from fnnkit.export import export_variant
    from fnnkit.export.triton import TritonSettings, write_repository
    from fnnkit.store import find_variant_dir
    from fnnkit.variants import resolve_variants

    if out is None:
        raise ConfigError("--format triton needs --out DIR: the Triton model repository to write")
    settings = TritonSettings(kind="KIND_GPU" if device == "cuda" else "KIND_CPU")
    table = Table(title=f"Triton model repository {out}", title_style="bold")
    for column in ("model", "from", "onnx sha256", "instances"):
        table.add_column(column, no_wrap=True)
    for spec in resolve_variants(variant):
        folder = find_variant_dir(artifacts, spec.name, dataset)
        export_variant(folder, "onnx,onnx-int8", device="cpu", opset=opset)  # reused when up to date
        for model in write_repository(folder, out, settings):
            table.add_row(model.name, model.format, model.onnx_sha256[:16] + "...", str(settings.instances))
    console.print(table)
    console.print(f"check it with: fnnkit verify {out}   serve it with: tritonserver --model-repository {out}")
