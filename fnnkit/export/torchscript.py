"""TorchScript (``model.torchscript.pt``): scripted, with fnnkit's metadata as an extra file.

Upstream PyTorch keeps TorchScript in maintenance mode (torch 2.14 warns that torch.jit is
deprecated in favour of torch.export); fnnkit still writes it because C++ deployments load
it with libtorch alone. ``model.torchscript.pt`` is a full-JIT file, which the mobile lite
interpreter refuses (no ``bytecode.pkl``); ``model.ptl`` (format ``torchscript-lite``) is
the same scripted module saved for the lite interpreter, and is proven by running it there
(the ``torchscript-lite`` backend; torch 2.14 deprecates the lite interpreter in favour of
ExecuTorch; existing PyTorch Mobile apps still load ``.ptl`` files).
The deprecation warnings are silenced (``backends.torch.known_deprecation``), where they are
known and documented, rather than shown on every export.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import torch

from fnnkit.backends.torch import known_deprecation
from fnnkit.errors import ExportError
from fnnkit.export.base import ExportContext

LITE_FREE_BYTES = 64 << 20
EXTRA_FILE = "fnnkit.json"  # read back with torch.jit.load(..., _extra_files={"fnnkit.json": ""})


def write(ctx: ExportContext, temp: Path) -> None:
    """Scripted rather than traced: the graph holds no data-dependent branch, and scripting
    cannot silently bake an example batch size into it."""
    buffer = io.BytesIO()  # torch's file writer aborts the process when the disk fills; Python's raises OSError
    with known_deprecation():
        scripted = torch.jit.script(copy.deepcopy(ctx.model).cpu().eval())
        torch.jit.save(scripted, buffer, _extra_files={EXTRA_FILE: json.dumps(ctx.metadata, indent=1)})
    temp.write_bytes(buffer.getvalue())


def write_lite(ctx: ExportContext, temp: Path) -> None:
    """The scripted module for the lite interpreter (PyTorch Mobile on Android/iOS, ``_load_for_lite_interpreter``)."""
    import shutil

    if shutil.disk_usage(temp.parent).free < LITE_FREE_BYTES:  # torch's writer aborts the process on a full disk
        raise ExportError(f"less than {LITE_FREE_BYTES >> 20} MB free in {temp.parent}; free some space and re-export")
    with known_deprecation():
        scripted = torch.jit.script(copy.deepcopy(ctx.model).cpu().eval())
        scripted._save_for_lite_interpreter(str(temp), _extra_files={EXTRA_FILE: json.dumps(ctx.metadata, indent=1)})
