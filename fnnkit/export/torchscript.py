"""TorchScript (``model.torchscript.pt``): scripted, with fnnkit's metadata as an extra file.

Upstream PyTorch keeps TorchScript in maintenance mode (torch 2.14 warns that torch.jit is
deprecated in favour of torch.export); fnnkit still writes it because C++ deployments load
it with libtorch alone. ``model.torchscript.pt`` is a full-JIT file, which the mobile lite
interpreter refuses (no ``bytecode.pkl``); ``model.ptl`` (format ``torchscript-lite``) is
the same scripted module saved for the lite interpreter, and is proven by running it there
(torch 2.14 deprecates the lite interpreter in favour of ExecuTorch; existing PyTorch Mobile
apps still load ``.ptl`` files).
The deprecation warnings are silenced here, where they are known and documented, rather
than shown on every export.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from fnnkit.errors import ArtifactError, ExportError
from fnnkit.export.base import ExportContext, Runner, as_float_cpu

LITE_FREE_BYTES = 64 << 20
EXTRA_FILE = "fnnkit.json"  # read back with torch.jit.load(..., _extra_files={"fnnkit.json": ""})


@contextlib.contextmanager
def _known_deprecation() -> Iterator[None]:
    with warnings.catch_warnings():
        for category in (FutureWarning, DeprecationWarning):  # torch 2.14 / torch 2.11
            warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=category)
            warnings.filterwarnings("ignore", message=r"Lite Interpreter is deprecated", category=category)
        yield


def write(ctx: ExportContext, temp: Path) -> None:
    """Scripted rather than traced: the graph holds no data-dependent branch, and scripting
    cannot silently bake an example batch size into it."""
    buffer = io.BytesIO()  # torch's file writer aborts the process when the disk fills; Python's raises OSError
    with _known_deprecation():
        scripted = torch.jit.script(copy.deepcopy(ctx.model).cpu().eval())
        torch.jit.save(scripted, buffer, _extra_files={EXTRA_FILE: json.dumps(ctx.metadata, indent=1)})
    temp.write_bytes(buffer.getvalue())


def open_ts(data: bytes, path: Path, device: str) -> tuple[Any, Runner]:
    extra = {EXTRA_FILE: ""}
    try:
        with _known_deprecation():
            module = torch.jit.load(io.BytesIO(data), map_location=device, _extra_files=extra)
    except RuntimeError as exc:
        raise ArtifactError(f"{path} is not a loadable TorchScript file ({exc}); re-export it") from None
    module.eval()

    @torch.inference_mode()
    def run(x: torch.Tensor) -> torch.Tensor:
        try:
            return as_float_cpu(module(x.to(device)))
        except RuntimeError as exc:  # TorchScript's interpreter errors; Ctrl-C is not a RuntimeError
            raise ArtifactError(f"{path} failed while running: {str(exc)[:300]}; re-export it") from None

    return module, run


def write_lite(ctx: ExportContext, temp: Path) -> None:
    """The scripted module for the lite interpreter (PyTorch Mobile on Android/iOS, ``_load_for_lite_interpreter``)."""
    import shutil

    if shutil.disk_usage(temp.parent).free < LITE_FREE_BYTES:  # torch's writer aborts the process on a full disk
        raise ExportError(f"less than {LITE_FREE_BYTES >> 20} MB free in {temp.parent}; free some space and re-export")
    with _known_deprecation():
        scripted = torch.jit.script(copy.deepcopy(ctx.model).cpu().eval())
        scripted._save_for_lite_interpreter(str(temp), _extra_files={EXTRA_FILE: json.dumps(ctx.metadata, indent=1)})


def open_lite(data: bytes, path: Path, device: str) -> tuple[Any, Runner]:
    from torch.jit.mobile import _load_for_lite_interpreter

    if device != "cpu":
        raise ExportError(f"{path}: the lite interpreter runs on the CPU only; export it with --device cpu")
    try:
        with _known_deprecation():
            module = _load_for_lite_interpreter(io.BytesIO(data))
    except RuntimeError as exc:
        raise ArtifactError(f"{path} is not a loadable lite-interpreter file ({exc}); re-export it") from None

    @torch.inference_mode()
    def run(x: torch.Tensor) -> torch.Tensor:
        return as_float_cpu(module(x.cpu()))

    return module, run
