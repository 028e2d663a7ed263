"""What an exported file is, apart from how it is written: name, file name, the backend that proves it, vetting.

This half of a format sits below both the backends (which read and run files) and the export
writers (which make them), and imports no torch: a process that only reads and runs an ONNX file
needs numpy and its runtime, nothing else. ``fnnkit.export`` adds the writers; ``manifest`` reads
``export.json`` and returns a file's sha256-verified, vetted bytes.

A new format is one row here (plus its writer in ``fnnkit.export.core.WRITERS`` and, if no
backend runs it yet, a backend); tests and the CLI read these tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from fnnkit.errors import ConfigError
from fnnkit.formats import onnx as onnx_vet
from fnnkit.registry import ALL, lookup, pick

DEFAULT_OPSET = 20  # torch 2.14's own default; onnxruntime >= 1.17 runs it (our floor is 1.20)
MIN_OPSET = 17  # below torchlib's native 18 the exporter converts down, which works for these ops
INPUT_NAME, OUTPUT_NAME = onnx_vet.INPUT_NAME, onnx_vet.OUTPUT_NAME

Vetter = Callable[[bytes, Path, Any], None]  # (bytes, path, VariantSpec | None): ArtifactError if unfit to parse


@dataclass(frozen=True)
class FileFormat:
    name: str
    file: str  # file name in the variant folder (a device-bound format adds the device for CUDA)
    runtime: str  # what runs it without fnnkit, for tables and the README
    backend: str  # the backend whose Predictor proves it at export (parity) and runs it everywhere else
    device_bound: bool = False  # compiled for one device (the .pt2); the others run anywhere
    in_all: tuple[str, ...] = ("cpu", "cuda")  # devices for which `--format all` includes it
    uses_opset: bool = False
    vet: Vetter | None = None  # checks on verified bytes before a runtime sees them (ONNX: no external data)

    def filename(self, device: str) -> str:
        """``model.pt2`` for the CPU, ``model.cuda.pt2`` for CUDA; portable formats have one name."""
        if not self.device_bound or device == "cpu":
            return self.file
        stem, _, suffix = self.file.rpartition(".")
        return f"{stem}.{device}.{suffix}"

    def key(self, device: str) -> str:
        """Entry name in export.json: a device-bound format has one entry per device."""
        return f"{self.name}:{device}" if self.device_bound else self.name


def _onnx(name: str, file: str, backend: str, ops: frozenset[str], **extra: Any) -> FileFormat:
    """The ONNX flavours share a runtime, the graph vetting (with their own op set) and --opset."""
    return FileFormat(
        name, file, "onnxruntime", backend, uses_opset=True, vet=partial(onnx_vet.vet_onnx, ops=ops), **extra
    )


FORMATS: dict[str, FileFormat] = {
    fmt.name: fmt
    for fmt in (
        _onnx("onnx", "model.onnx", "onnxruntime", onnx_vet.OPS_FP32),
        FileFormat("torchscript", "model.torchscript.pt", "torch.jit", "torchscript"),
        FileFormat("torchscript-lite", "model.ptl", "PyTorch Mobile lite interpreter", "torchscript-lite", in_all=()),
        FileFormat("compiled", "model.pt2", "torch._inductor (AOTInductor)", "aoti", device_bound=True),
        _onnx("onnx-int8", "model.int8.onnx", "onnxruntime-int8", onnx_vet.OPS_INT8),
        _onnx(
            "onnx-int8-static", "model.int8-static.onnx", "onnxruntime-int8-static", onnx_vet.OPS_INT8, in_all=("cpu",)
        ),
        _onnx("onnx-fp16", "model.fp16.onnx", "onnxruntime-fp16", onnx_vet.OPS_FP16, in_all=("cuda",)),
    )
}
FORMAT_CHOICES: tuple[str, ...] = (*FORMATS, ALL)


def get_format(name: str) -> FileFormat:
    return lookup(FORMATS, name, "format")


def resolve_formats(names: str | list[str], device: str = "cpu") -> list[FileFormat]:
    """``"all"``, ``"onnx"``, ``"onnx,compiled"``, ``"all,onnx-fp16"`` -> formats in table order, no repeats.

    ``all`` means what earns its place on ``device``: fp16 only pays off on a GPU.
    """
    return pick(FORMATS, names, "format", everything=lambda: [f for f in FORMATS.values() if device in f.in_all])


def check_opset(opset: int) -> int:
    """Refuse an opset the installed onnx does not know, before a minute of exporting."""
    import onnx

    highest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= highest:
        raise ConfigError(
            f"--opset {opset} is outside {MIN_OPSET}..{highest} (onnx {onnx.__version__}); "
            f"the default {DEFAULT_OPSET} runs on onnxruntime >= 1.17"
        )
    return opset
