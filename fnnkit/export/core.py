"""Export one trained variant to files, prove each one, record it in ``export.json``.

Each file is written to a temporary name, opened by the backend that proves its format
(``FileFormat.backend``: the Predictor bench times and serve deploys) and run on the whole test
set while still temporary; only a file that passes replaces the previous one. The manifest
records what each file was made from, so an unchanged file is reused, and a loader
(``fnnkit.formats.manifest``) checks the file's sha256 before any runtime parses a byte of it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fnnkit import __version__
from fnnkit.backends import Backend, Predictor, get_backend
from fnnkit.backends.onnx_runtime import SessionRefused
from fnnkit.capabilities import DEFAULT_ISA, buildable_isa, check_isa
from fnnkit.data import TestSet, load_dataset, load_test_set, preprocess
from fnnkit.env import package_version, resolve_device
from fnnkit.errors import ArtifactError, ExportError
from fnnkit.export import compiled, onnx_files, parity, quantized, torchscript
from fnnkit.export.base import ExportContext, Writer
from fnnkit.formats import DEFAULT_OPSET, FileFormat, check_opset, get_format, resolve_formats, vetting
from fnnkit.formats.manifest import read_export_manifest, read_exported
from fnnkit.store import (
    EXPORT_MANIFEST,
    EXPORT_SCHEMA,
    MAX_EXPORT_BYTES,
    Artifact,
    atomic_write_json,
    commit_files,
    export_command,  # noqa: F401  (re-exported: export hints are named from here too)
    folder_lock,
    load_trained,
    read_regular,
    read_verified,
    sha256_bytes,
)
from fnnkit.variants import VARIANTS

# How each format is written; what it is (file, vetting, proving backend) is ``fnnkit.formats.FORMATS``.
WRITERS: dict[str, Writer] = {
    "onnx": onnx_files.write_fp32,
    "torchscript": torchscript.write,
    "torchscript-lite": torchscript.write_lite,
    "compiled": compiled.write,
    "onnx-int8": onnx_files.write_int8,
    "onnx-int8-static": quantized.write_int8_static,
    "onnx-fp16": onnx_files.write_fp16,
}

TestSetFor = Callable[[dict], TestSet]  # model card -> its test set; lets a caller load each dataset once
ProgressFn = Callable[[str, str], None]  # (format name, phase: "reused" | "export" | "parity" | "done")


@dataclass(frozen=True)
class ExportResult:
    variant: str
    dataset: str
    format: str
    device: str
    path: Path
    status: str  # "exported" | "reused"
    sha256: str
    bytes: int
    export_seconds: float  # writing the file, parity excluded; for "reused", the original export's
    parity: dict  # parity.Parity as recorded


def load_calibration(card: dict, data_dir: str | os.PathLike | None = None) -> torch.Tensor:
    """Training images of the model's dataset, preprocessed: what static quantisation calibrates on."""
    data = load_dataset(card["dataset"]["name"], data_dir=data_dir, download=False)
    return preprocess(data.train_x)


def export_variant(
    folder: str | os.PathLike,
    formats: str | list[FileFormat] = "all",
    *,
    device: str = "cpu",
    opset: int = DEFAULT_OPSET,
    isa: str = DEFAULT_ISA,
    force: bool = False,
    test_set_for: TestSetFor | None = None,
    data_dir: str | os.PathLike | None = None,
    on_progress: ProgressFn | None = None,
) -> list[ExportResult]:
    """Export the trained variant in ``folder`` to ``formats``, each proven against eager PyTorch.

    Holds the folder's lock throughout, so training or exporting the same folder elsewhere
    waits instead of mixing files from two sets of weights. The test set is loaded only if a
    format needs exporting (``test_set_for`` or ``load_test_set(card, data_dir)``).
    """
    folder = Path(folder)
    device = resolve_device(str(device)).type
    fmts = resolve_formats(formats, device) if isinstance(formats, str) else list(formats)
    check_opset(opset)
    isa = check_isa(isa)
    if any(fmt.device_bound for fmt in fmts):
        isa = buildable_isa(isa)
    notify = on_progress or (lambda fmt, phase: None)
    with folder_lock(folder):
        model, card = load_trained(folder, "cpu")  # refuses weights whose sha256 changed
        manifest = _manifest_for_update(folder, card, force)
        ctx = ExportContext(model, _metadata(card), device, opset, isa, lambda: load_calibration(card, data_dir))
        judge = _Judge(model, card, test_set_for or (lambda c: load_test_set(c, data_dir)))
        results = []
        for fmt in fmts:
            entry = manifest["formats"].get(fmt.key(device))
            if not force and _reusable(entry, fmt, folder, ctx):
                if not _stamped(fmt, card, manifest, entry):  # e.g. retrained to the same weights: a new card
                    entry = _restamp(fmt, ctx, folder, card, manifest, entry)
                notify(fmt.name, "reused")
                results.append(_result(card, fmt, folder, entry, "reused"))
                continue
            entry = _export_one(fmt, ctx, folder, judge, notify, manifest)  # per format: a later failure keeps it
            notify(fmt.name, "done")
            results.append(_result(card, fmt, folder, entry, "exported"))
    return results


class _Judge:
    """Test set and eager logits, made once per variant and only if some format needs them."""

    def __init__(self, model: torch.nn.Module, card: dict, test_set_for: TestSetFor) -> None:
        self.model, self.card, self.test_set_for = model, card, test_set_for
        self.test_set: TestSet | None = None
        self.eager: np.ndarray | None = None

    def __call__(self, fmt: FileFormat, backend: Backend, predictor: Predictor, path: Path) -> parity.Parity:
        if self.test_set is None:
            self.test_set = self.test_set_for(self.card)
        inputs, labels = self.test_set
        expected = self.card["dataset"].get("test_size")
        if expected is not None and len(labels) != expected:
            raise ExportError(
                f"the {self.card['dataset']['name']} test set here has {len(labels)} images, but the model in "
                f"{path.parent} was evaluated on {expected}: parity would compare against other data"
            )
        if self.eager is None:
            self.eager = parity.reference(self.model, inputs)
        result = parity.measure(predictor, inputs.numpy(), labels.numpy(), self.eager, backend.tolerance)
        parity.require(result, path, fmt.name)
        return result


def prover(fmt: FileFormat, data: bytes, path: Path, device: str) -> tuple[Backend, Predictor]:
    """The backend that proves ``fmt`` and its Predictor on ``data``: the same open bench and serve use."""
    backend = get_backend(fmt.backend)
    try:
        return backend, backend.open(data, path, device, torch.get_num_threads())
    except SessionRefused as exc:
        raise ExportError(f"{exc}; if it names an opset, export with a lower --opset") from None


def _export_one(
    fmt: FileFormat, ctx: ExportContext, folder: Path, judge: _Judge, notify: ProgressFn, manifest: dict
) -> dict:
    """Write the file in a staging folder, prove it there, then switch file and manifest as one unit:
    a failing file never replaces a good one, and a crash never separates a file from its record."""
    path = folder / fmt.filename(ctx.device)
    made: dict = {}

    def write_and_prove(staged: Path) -> None:
        notify(fmt.name, "export")
        started = time.perf_counter()
        WRITERS[fmt.name](ctx, staged)
        made["seconds"] = time.perf_counter() - started
        data = read_regular(staged, MAX_EXPORT_BYTES, "exported file")
        made["sha256"], made["bytes"] = sha256_bytes(data), len(data)
        if fmt.vet is not None:  # the vetting every load would run, once here; its stamp spares them
            fmt.vet(data, path, VARIANTS[ctx.metadata["variant"]])
        notify(fmt.name, "parity")
        backend, predictor = prover(fmt, data, path, ctx.device)
        made["parity"] = judge(fmt, backend, predictor, path)

    def write_manifest(staged: Path) -> None:
        made["entry"] = {
            "file": path.name,
            "sha256": made["sha256"],
            "bytes": made["bytes"],
            "export_seconds": round(made["seconds"], 3),
            "device": ctx.device,
            **({"isa": ctx.isa} if _isa_bound(fmt, ctx.device) else {}),
            "versions": _versions(fmt, ctx.opset),
            "source_sha256": ctx.metadata["source_sha256"],
            "parity": made["parity"].as_dict(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        stamp = fmt.vet and vetting.stamp(fmt.name, judge.card, manifest, made["entry"])
        if stamp:
            made["entry"]["vetted"] = stamp
        updated = {**manifest, "formats": {**manifest["formats"], fmt.key(ctx.device): made["entry"]}}
        staged.write_bytes((json.dumps(updated, indent=2, allow_nan=False) + "\n").encode())

    commit_files(folder, {path.name: write_and_prove, EXPORT_MANIFEST: write_manifest})
    manifest["formats"][fmt.key(ctx.device)] = made["entry"]
    return made["entry"]


def _manifest_for_update(folder: Path, card: dict, force: bool) -> dict:
    fresh = {"schema": EXPORT_SCHEMA, "variant": card["variant"]["name"], "dataset": card["dataset"]["name"]}
    if not (folder / EXPORT_MANIFEST).exists():
        return fresh | {"formats": {}}
    try:
        manifest = read_export_manifest(folder)
    except ArtifactError as exc:
        if force:  # --force re-creates every file it names, so the old records are not needed
            return fresh | {"formats": {}}
        raise ArtifactError(f"{exc}; or pass --force to re-create it") from None
    return manifest | fresh


def _reusable(entry: dict | None, fmt: FileFormat, folder: Path, ctx: ExportContext) -> bool:
    """Same weights, same target, same toolchain, passed parity, and the file is the one recorded."""
    try:
        Artifact.at(folder).entry(fmt, fmt.key(ctx.device), entry)
    except ArtifactError:
        return False
    versions = entry.get("versions", {})
    same = (
        entry.get("source_sha256") == ctx.metadata["source_sha256"]
        and entry.get("device") == ctx.device
        and (not _isa_bound(fmt, ctx.device) or entry.get("isa") == ctx.isa)
        and versions.get("torch") == torch.__version__
        and (not fmt.uses_opset or versions.get("opset") == ctx.opset)
        and entry.get("parity", {}).get("passed") is True
    )
    if not same:
        return False
    try:
        read_verified(folder / fmt.filename(ctx.device), entry["sha256"])  # a regular file, bounded, as recorded
    except ArtifactError:
        return False
    return True


def _stamped(fmt: FileFormat, card: dict, manifest: dict, entry: dict) -> bool:
    """A vetted format's entry carries this machine's stamp (``vetting``); one without is made again, so its
    loads need no second vetting."""
    return fmt.vet is None or vetting.holds(entry.get("vetted"), fmt.name, card, manifest, entry)


def _restamp(fmt: FileFormat, ctx: ExportContext, folder: Path, card: dict, manifest: dict, entry: dict) -> dict:
    """A current file whose stamp no longer holds (the card changed, or no stamp yet): vet its bytes in full
    again and record a fresh stamp; the file itself is kept, so the switch is the manifest alone."""
    data = read_verified(folder / entry["file"], entry["sha256"])
    fmt.vet(data, folder / entry["file"], VARIANTS[ctx.metadata["variant"]])
    fresh = {name: value for name, value in entry.items() if name != "vetted"}
    stamp = vetting.stamp(fmt.name, card, manifest, fresh)
    if stamp:
        fresh["vetted"] = stamp
    manifest["formats"][fmt.key(ctx.device)] = fresh
    atomic_write_json(folder / EXPORT_MANIFEST, manifest)
    return fresh


def _isa_bound(fmt: FileFormat, device: str) -> bool:
    """A CPU build of a device-bound format (the .pt2) is compiled for one instruction set."""
    return fmt.device_bound and device == "cpu"


def _result(card: dict, fmt: FileFormat, folder: Path, entry: dict, status: str) -> ExportResult:
    return ExportResult(
        variant=card["variant"]["name"],
        dataset=card["dataset"]["name"],
        format=fmt.name,
        device=entry["device"],
        path=folder / entry["file"],
        status=status,
        sha256=entry["sha256"],
        bytes=entry["bytes"],
        export_seconds=entry["export_seconds"],
        parity=entry["parity"],
    )


def _metadata(card: dict) -> dict[str, str]:
    """What travels inside every exported file, so it explains itself without export.json."""
    return {
        "variant": card["variant"]["name"],
        "description": str(card["variant"].get("description", "")),
        "dataset": card["dataset"]["name"],
        "test_accuracy": f"{card['test_accuracy']:.2f}",
        "fnnkit_version": __version__,
        "source_sha256": card["weights"]["sha256"],
        "input": "input: float32 [batch, 784], pixels / 255, no normalisation",
        "output": "logits: float32 [batch, 10]",
    }


def _versions(fmt: FileFormat, opset: int) -> dict:
    found = {"fnnkit": __version__, "torch": torch.__version__, "onnx": package_version("onnx")}
    found["onnxruntime"] = package_version("onnxruntime-gpu") or package_version("onnxruntime")
    if fmt.uses_opset:
        found["opset"] = opset
    return found


def load_exported(folder: str | os.PathLike, format: str, device: str = "cpu", threads: int = 1) -> Predictor:
    """An exported file opened by the backend that proves its format, after ``read_exported``'s checks.

    Unlike ``Backend.load`` it is not limited to the devices that backend is benchmarked on: any file
    that was exported for ``device`` opens there, as export parity opened it.
    """
    fmt = get_format(format)
    data, path = read_exported(folder, fmt.name, device)
    return prover(fmt, data, path, device)[1]
