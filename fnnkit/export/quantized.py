"""Static int8 ONNX (``model.int8-static.onnx``): QDQ, activations calibrated on training images.

Dynamic int8 (``onnx_files.write_int8``) measures each batch's activation range per call,
which costs about as much as it saves at batch 1. Here the ranges are fixed ahead of time
from training images (never test images: parity is judged on those), weights are quantised
per output channel, and onnxruntime fuses the QuantizeLinear/DequantizeLinear pairs into
int8 kernels (QLinearMatMul / QGemm) when the session opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from fnnkit.errors import ExportError
from fnnkit.export.base import ExportContext, quiet_logger
from fnnkit.export.onnx_files import finish, fp32_proto
from fnnkit.formats.onnx import INPUT_NAME

CALIBRATION_IMAGES = 2048  # MinMax ranges settle well before this on MNIST-size inputs
CALIBRATION_BATCH = 256
PRECISION = "int8 weights per channel and activations (static QDQ, calibrated on training images), float32 I/O"


def calibration_batches(images: torch.Tensor, batch: int = CALIBRATION_BATCH) -> Iterator[dict]:
    """Feeds for onnxruntime's calibrator: the first CALIBRATION_IMAGES images, fixed order, so builds repeat."""
    chosen = images[:CALIBRATION_IMAGES].detach().cpu().float().contiguous().numpy()
    for start in range(0, len(chosen), batch):
        yield {INPUT_NAME: chosen[start : start + batch]}


def write_int8_static(ctx: ExportContext, temp: Path) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if ctx.calibration is None:
        raise ExportError("static int8 needs calibration images (the training split); none were given")
    images = ctx.calibration()

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = calibration_batches(images)

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    proto = fp32_proto(ctx)
    del proto.graph.value_info[:]  # stale after the quantizer's Gemm rewrite (see onnx_files.write_int8)
    try:
        with quiet_logger():  # it logs "consider pre-processing" to stderr on every call
            quantize_static(
                proto, temp, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, use_external_data_format=False,
            )  # fmt: skip
        quantized = onnx.load_model_from_string(temp.read_bytes())
    except Exception as exc:  # the quantizer raises onnx, numpy and its own errors
        raise ExportError(f"onnxruntime static quantization failed: {type(exc).__name__}: {exc}") from exc
    finish(quantized, ctx, temp, PRECISION)
