"""`fnnkit export`: trained variants -> ONNX / TorchScript / .pt2 / int8 / fp16 files, each proven."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import MofNCompleteColumn

from fnnkit.cli import app
from fnnkit.cli.options import ARTIFACTS, DATA_DIR, TRAINED_DATASET, VARIANT, device_option, folder_option, number
from fnnkit.cli.render import console, err_console, export_table, progress_bars
from fnnkit.cli.triton_export import export_triton
from fnnkit.errors import ArtifactError, ConfigError, ExportError

FORMAT = typer.Option(
    "all",
    "--format",
    "-f",
    help="onnx | torchscript | torchscript-lite | compiled | onnx-int8 | onnx-int8-static | onnx-fp16 | all, or a "
    "comma list ('all': onnx, torchscript, compiled, onnx-int8 and, on cpu, onnx-int8-static; with --device cuda, "
    "onnx-fp16 instead of onnx-int8-static). torchscript-lite (model.ptl, PyTorch Mobile) only when named; "
    "triton writes a Triton model repository (with --out).",
)
EXPORT_DEVICE = device_option(
    "cpu",
    "the device the .pt2 is compiled for and parity runs on; cpu so files work anywhere, while cuda writes "
    "model.cuda.pt2 beside model.pt2",
)
ISA = typer.Option(
    "avx2",
    "--isa",
    help="avx2 | avx512 | native: the instruction set the CPU .pt2 is compiled for. avx2 (default) runs on "
    "any x86-64 CPU since ~2015; native is this CPU's own, and other CPUs may refuse it.",
)
OPSET = number(None, "--opset", "ONNX opset (default 20, which onnxruntime >= 1.17 runs).", 1, 1000, kind=int)


@app.command()
def export(
    format: str = FORMAT,
    variant: str = VARIANT,
    dataset: str = TRAINED_DATASET,
    device: Any = EXPORT_DEVICE,
    opset: int | None = OPSET,
    isa: str = ISA,
    force: bool = typer.Option(False, "--force", help="Re-export even when the recorded weights sha256 still matches."),
    train_if_missing: bool = typer.Option(
        False, "--train-if-missing", help="Train missing variants first (tutorial recipe, on --dataset)."
    ),
    data_dir: Path | None = DATA_DIR,
    artifacts: Path = ARTIFACTS,
    out: Path | None = folder_option(None, "--out", "--format triton only: the model repository folder to write."),
) -> None:
    """Export trained variants; run each file with its own runtime on the whole test set against eager PyTorch.

    Example: fnnkit export --format all --variant all
    """
    from fnnkit.capabilities import check_isa
    from fnnkit.export import DEFAULT_OPSET, check_opset, export_variant, resolve_formats
    from fnnkit.variants import resolve_variants

    target = device.type
    if format.strip().lower() == "triton":
        return export_triton(variant, dataset, artifacts, out, target, check_opset(opset or DEFAULT_OPSET), data_dir)
    if out is not None:
        raise ConfigError(
            f"--out {out} is for --format triton only; the other formats are written beside the weights, "
            f"under --artifacts ({artifacts}/<dataset>/<variant>/)"
        )
    formats = resolve_formats(format, target)  # an unknown name fails here, before any work
    specs = resolve_variants(variant)
    opset = check_opset(DEFAULT_OPSET if opset is None else opset)
    isa = check_isa(isa)
    folders = [_trained_folder(artifacts, spec.name, dataset, train_if_missing, data_dir, target) for spec in specs]
    console.print(
        f"exporting {', '.join(s.name for s in specs)} to {', '.join(f.name for f in formats)} "
        f"for [bold]{target}[/] (opset {opset}, .pt2 isa {isa}) under [bold]{artifacts}[/]"
    )

    results, failures = [], []
    test_set_for = _memoized_test_sets(data_dir)
    with progress_bars(MofNCompleteColumn()) as progress:
        task = progress.add_task("export", total=len(folders) * len(formats))
        for folder in folders:

            def show(fmt: str, phase: str, name: str = folder.name) -> None:
                progress.update(task, description=f"{name} {fmt}: {phase}")
                if phase in ("done", "reused"):
                    progress.advance(task)

            try:
                results += export_variant(
                    folder, formats, device=target, opset=opset, isa=isa, force=force, test_set_for=test_set_for,
                    data_dir=data_dir,
                    on_progress=show,
                )  # fmt: skip
            except (ExportError, ArtifactError) as exc:  # one bad variant must not hide the others' results
                failures.append(f"{folder}: {exc}")
                err_console.print(f"[bold red]failed:[/] {exc}", highlight=False, soft_wrap=True)
    if results:
        console.print(export_table(results))
    if failures:
        raise ExportError(f"{len(failures)} of {len(folders)} variant(s) failed to export; see the messages above")


def _trained_folder(
    artifacts: Path, variant: str, dataset: str, train: bool, data_dir: Path | None, device: str
) -> Path:
    """The variant's folder, training it first when asked; otherwise the exact command that would."""
    import torch

    from fnnkit.data import default_data_dir, load_dataset
    from fnnkit.store import Artifact, train_command, variant_dir
    from fnnkit.train import train_and_save
    from fnnkit.variants import get_spec

    if (found := Artifact.lookup(artifacts, variant, dataset)) is not None:
        return found.folder
    if not train:
        where = f"{artifacts}/{dataset}" if dataset != "auto" else str(artifacts)
        raise ArtifactError(
            f"variant {variant} is not trained under {where}; train it first:\n"
            f"  {train_command(artifacts, variant, None if dataset == 'auto' else dataset)}\n"
            "or add --train-if-missing to this command"
        )
    data = load_dataset(dataset, data_dir=data_dir or default_data_dir())
    if data.info.note:
        console.print(f"[yellow]note:[/] {data.info.note}")
    console.print(f"training {variant} on {data.info.name} (tutorial recipe) ...")
    train_and_save(get_spec(variant), data, artifacts, device=torch.device(device))
    return variant_dir(artifacts, data.info.name, variant)


def _memoized_test_sets(data_dir: Path | None):
    """Each dataset loaded once for all the variants trained on it, and only if a file needs checking."""
    from fnnkit.data import default_data_dir, load_test_set

    cache: dict = {}

    def test_set_for(card: dict):
        name = card["dataset"]["name"]
        if name not in cache:
            cache[name] = load_test_set(card, data_dir or default_data_dir())
        return cache[name]

    return test_set_for


__all__ = ["export", "export_table"]
