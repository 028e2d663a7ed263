"""The export formats as data: one row per format, its file, its runtime and its acceptance rule.

A new format is one row here plus a module with ``write`` and ``open``; tests and the CLI
read this table, so they pick it up without further edits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from fnnkit.errors import ConfigError
from fnnkit.export import compiled, onnx_files, quantized, torchscript
from fnnkit.export.base import DEFAULT_OPSET, FP16, FP32, INT8, MIN_OPSET, Opener, Tolerance, Vetter, Writer
from fnnkit.registry import ALL, lookup, pick


@dataclass(frozen=True)
class ExportFormat:
    name: str
    file: str  # file name in the variant folder (a device-bound format adds the device for CUDA)
    runtime: str  # what runs it without fnnkit, for tables and the README
    write: Writer
    open: Opener
    tolerance: Tolerance
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


def _onnx(name: str, file: str, write: Writer, tolerance: Tolerance, ops: frozenset[str], **extra) -> ExportFormat:
    """The ONNX flavours share a runtime, a loader, the graph vetting (with their own op set) and --opset."""
    return ExportFormat(
        name, file, "onnxruntime", write, onnx_files.open_onnx, tolerance, uses_opset=True,
        vet=partial(onnx_files.vet_onnx, ops=ops), **extra,
    )  # fmt: skip


FORMATS: dict[str, ExportFormat] = {
    fmt.name: fmt
    for fmt in (
        _onnx("onnx", "model.onnx", onnx_files.write_fp32, FP32, onnx_files.OPS_FP32),
        ExportFormat("torchscript", "model.torchscript.pt", "torch.jit", torchscript.write, torchscript.open_ts, FP32),
        ExportFormat(
            "torchscript-lite", "model.ptl", "PyTorch Mobile lite interpreter", torchscript.write_lite,
            torchscript.open_lite, FP32, in_all=(),
        ),
        ExportFormat(
            "compiled", "model.pt2", "torch._inductor (AOTInductor)", compiled.write, compiled.open_pt2, FP32,
            device_bound=True,
        ),
        _onnx("onnx-int8", "model.int8.onnx", onnx_files.write_int8, INT8, onnx_files.OPS_INT8),
        _onnx(
            "onnx-int8-static", "model.int8-static.onnx", quantized.write_int8_static, INT8, onnx_files.OPS_INT8,
            in_all=("cpu",),
        ),
        _onnx("onnx-fp16", "model.fp16.onnx", onnx_files.write_fp16, FP16, onnx_files.OPS_FP16, in_all=("cuda",)),
    )
}  # fmt: skip
FORMAT_CHOICES: tuple[str, ...] = (*FORMATS, ALL)


def get_format(name: str) -> ExportFormat:
    return lookup(FORMATS, name, "format")


def resolve_formats(names: str | list[str], device: str = "cpu") -> list[ExportFormat]:
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
