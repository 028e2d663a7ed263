"""Export trained variants to deployable files, each proven by the backend that runs it.

``fnnkit.formats`` names every format once (file, vetting, proving backend): ``onnx``,
``torchscript``, ``torchscript-lite``, ``compiled`` (AOTInductor ``.pt2``), ``onnx-int8``
(dynamic), ``onnx-int8-static`` (calibrated QDQ) and ``onnx-fp16``. ``export_variant`` writes the
files of one variant folder plus ``export.json``; ``load_exported`` opens one back, verified.

Modules: ``base`` (what a writer gets), one module per file kind (``onnx_files``, ``quantized``,
``torchscript``, ``compiled``, ``triton``), ``parity`` and ``core`` (the writers table, the proof).
Names are imported on first use, so a reader of ``fnnkit.export.read_exported`` (or of
``fnnkit.formats``) imports no torch; the writers import it.
"""

from __future__ import annotations

from fnnkit.lazy import lazy_names

_WHERE = {
    "DEFAULT_OPSET": "fnnkit.formats",
    "FORMATS": "fnnkit.formats",
    "FORMAT_CHOICES": "fnnkit.formats",
    "FileFormat": "fnnkit.formats",
    "check_opset": "fnnkit.formats",
    "get_format": "fnnkit.formats",
    "resolve_formats": "fnnkit.formats",
    "EXPORT_SCHEMA": "fnnkit.store",
    "export_command": "fnnkit.store",
    "is_exported": "fnnkit.formats.manifest",
    "read_export_manifest": "fnnkit.formats.manifest",
    "read_exported": "fnnkit.formats.manifest",
    "check_self_contained": "fnnkit.formats.onnx",
    "vet_onnx": "fnnkit.formats.onnx",
    "FP16": "fnnkit.backends.base",
    "FP32": "fnnkit.backends.base",
    "INT8": "fnnkit.backends.base",
    "Tolerance": "fnnkit.backends.base",
    "ExportResult": "fnnkit.export.core",
    "export_variant": "fnnkit.export.core",
    "load_exported": "fnnkit.export.core",
}


__getattr__, __dir__ = lazy_names(__name__, _WHERE)

__all__ = sorted(_WHERE)
