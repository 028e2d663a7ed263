"""`fnnkit predict`: classify pictures of digits (or .npy / IDX arrays) with a verified model."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fnnkit.cli import app
from fnnkit.cli.options import ARTIFACTS, TRAINED_DATASET, device_option, folder_option, input_paths, number
from fnnkit.cli.render import console, err_console, predict_table, printable

BAD_INPUT_EXIT = 1  # some files could not be classified: the others' results are still printed


@app.command()
def predict(
    paths: list[Path] = typer.Argument(
        ...,
        help="PNG/JPEG/BMP files, folders of them, .npy arrays or IDX files.",
        parser=str,
        callback=lambda value: input_paths(value, "input"),
    ),
    variant: str = typer.Option("C", "--variant", "-v", help="A, B, C, D or E."),
    dataset: str = TRAINED_DATASET,
    backend: str = typer.Option(
        "onnxruntime", "--backend", "-b", help="Any backend of `fnnkit bench` (`fnnkit backends`)."
    ),
    device: str = device_option("cpu", "a few pictures cost less on the CPU than starting CUDA", as_name=True),
    top: int = number(2, "--top", "How many classes to report per input.", 1, 10),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line instead of a table."),
    explain: bool = typer.Option(False, "--explain", help="Say what normalisation did to each picture."),
    save_inputs: Path | None = folder_option(None, "--save-inputs", "Write the 28x28 each model saw as PNGs here."),
    artifacts: Path = ARTIFACTS,
) -> None:
    """Classify real pictures: grayscale, invert light paper, crop, scale to 20 px, centre by mass, as MNIST did.

    Example: fnnkit predict scans/ digit.png --variant C --top 3 --explain
    """
    from fnnkit.predict import load_model, load_samples
    from fnnkit.predict import predict as run_predict
    from fnnkit.predict import save_inputs as write_inputs
    from fnnkit.store import ensure_writable_dir

    if save_inputs is not None:
        ensure_writable_dir(save_inputs, "--save-inputs")  # before any work: a bad folder is named at once
    model = load_model(
        artifacts, variant, dataset, backend, device=device
    )  # a missing model fails before any file is read
    samples = list(load_samples(paths))
    bad = [s for s in samples if s.problem]
    for s in bad:
        err_console.print(f"[bold red]cannot classify:[/] {printable(s.problem)}", highlight=False, soft_wrap=True)
    results = run_predict(model, samples, top)
    if save_inputs is not None:
        written = write_inputs(samples, save_inputs)
        err_console.print(f"wrote {len(written)} 28x28 input(s) to {printable(str(save_inputs))}", highlight=False)
    if as_json:
        for r in results:
            row = {"file": r.name, "top": [{"class": c, "probability": round(p, 6)} for c, p in r.top]}
            console.print_json(json.dumps(row | ({"steps": list(r.steps)} if explain else {})), indent=None)
    elif results:
        console.print(predict_table(results, model, explain))
    if bad:
        err_console.print(
            f"[bold red]{len(bad)} of {len(samples)} input(s) could not be classified[/]", highlight=False
        )
        raise typer.Exit(BAD_INPUT_EXIT)


__all__ = ["predict", "predict_table"]
