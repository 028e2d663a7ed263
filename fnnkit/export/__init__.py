"""Export trained variants to deployable files, each proven against eager PyTorch.

One registry (``FORMATS``) names every format once: ``onnx``, ``torchscript``, ``compiled``
(AOTInductor ``.pt2``), ``onnx-int8`` (dynamic), ``onnx-int8-static`` (calibrated QDQ) and
``onnx-fp16``. ``export_variant`` writes the files of one variant folder plus ``export.json``;
``load_exported`` opens one back, verified.

Modules: ``base`` (shared types and tolerances), ``formats`` (the registry), one module per
file kind (``onnx_files``, ``quantized``, ``torchscript``, ``compiled``), ``parity`` and ``core``.
"""

from __future__ import annotations

from fnnkit.export.base import DEFAULT_OPSET, FP16, FP32, INT8, LoadedExport, Tolerance
from fnnkit.export.core import (
    EXPORT_SCHEMA,
    ExportResult,
    export_command,
    export_variant,
    is_exported,
    load_exported,
    read_export_manifest,
    read_exported,
)
from fnnkit.export.formats import FORMAT_CHOICES, FORMATS, ExportFormat, check_opset, get_format, resolve_formats
from fnnkit.export.onnx_files import check_self_contained, vet_onnx

__all__ = [
    "DEFAULT_OPSET",
    "EXPORT_SCHEMA",
    "FORMATS",
    "FORMAT_CHOICES",
    "FP16",
    "FP32",
    "INT8",
    "ExportFormat",
    "ExportResult",
    "LoadedExport",
    "Tolerance",
    "check_opset",
    "check_self_contained",
    "export_command",
    "export_variant",
    "is_exported",
    "get_format",
    "load_exported",
    "read_export_manifest",
    "read_exported",
    "resolve_formats",
    "vet_onnx",
]
