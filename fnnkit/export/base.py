"""What every export writer shares: the example batch, what a writer gets, and quieting torch's exporters.

The file half of a format (name, file name, vetting, the backend that proves it) is ``fnnkit.formats``;
acceptance rules are the proving backend's ``tolerance``."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fnnkit.backends.base import quiet_logger  # noqa: F401  (re-exported for the writers)

EXAMPLE_BATCH = 8  # tracing batch; >= 2 so torch.export does not specialise the batch axis to 1
Writer = Callable[["ExportContext", Path], None]  # writes the format's file at the given (temporary) path


@dataclass(frozen=True)
class ExportContext:
    """Everything a format's writer needs; built once per variant."""

    model: torch.nn.Module  # eager, float32, eval mode, on the CPU
    metadata: dict[str, str]  # variant, dataset, accuracy, versions, source sha256: travels inside the file
    device: str  # "cpu" | "cuda": what a device-bound format is compiled for; where parity runs
    opset: int
    isa: str = "avx2"  # instruction set a compiled (.pt2) CPU package targets: capabilities.ISA_CHOICES
    calibration: Callable[[], torch.Tensor] | None = None  # training images [N, 784], loaded only if asked
    memo: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)  # graphs exported once per variant


@contextlib.contextmanager
def quiet_torch_internals() -> Iterator[None]:
    """Silence deprecation warnings torch raises about its own internals while exporting.

    torch 2.11's exporters deep-copy FX graphs whose pytree specs warn that ``LeafSpec`` is
    deprecated (a FutureWarning from inside torch, printed on every ``fnnkit export``, that no
    caller can act on); later releases no longer do.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
        )
        yield
