"""ONNX files: fp32 (the reference export), int8 (dynamic quantization) and fp16 (for GPUs).

Static int8 lives in ``quantized``; it reuses ``fp32_proto`` and ``finish`` from here.

All of them keep the one interface every backend expects: input ``input`` float32
[batch, 784], output ``logits`` float32 [batch, 10], a dynamic batch axis. fp16 casts inside
the graph, so a caller never changes its input dtype. Files are self-contained: fnnkit
serialises the ModelProto itself (the exporter never gets to write a ``.data`` file beside
it), and the loader refuses any ONNX file that points at external data (``fnnkit.formats.onnx``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from fnnkit.errors import ExportError
from fnnkit.export.base import EXAMPLE_BATCH, ExportContext, quiet_logger, quiet_torch_internals
from fnnkit.formats.onnx import INPUT_NAME, OUTPUT_NAME, check_interface, check_self_contained
from fnnkit.variants import INPUT_DIM

if TYPE_CHECKING:
    import onnx


def export_proto(model: torch.nn.Module, opset: int) -> onnx.ModelProto:
    """The dynamo exporter's graph with a named, dynamic batch axis, kept in memory."""
    example = torch.rand(EXAMPLE_BATCH, INPUT_DIM)
    batch = torch.export.Dim("batch", min=1)
    try:
        with quiet_torch_internals():
            program = torch.onnx.export(
                model.cpu().eval(),
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},),
                opset_version=opset,
                external_data=False,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; the user needs one message
        raise ExportError(f"torch.onnx.export (dynamo) failed at opset {opset}: {type(exc).__name__}: {exc}") from exc
    proto = program.model_proto
    _name_batch_axis(proto)
    return proto


def _name_batch_axis(proto: onnx.ModelProto) -> None:
    """Call the dynamic axis ``batch`` everywhere: torch 2.6's exporter names it after its symbol (``s0``)."""
    interface = (*proto.graph.input, *proto.graph.output)
    symbols = {v.type.tensor_type.shape.dim[0].dim_param for v in interface if v.type.tensor_type.shape.dim}
    symbols -= {"", "batch"}
    for value in (*interface, *proto.graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in symbols:
                dim.dim_param = "batch"


def fp32_proto(ctx: ExportContext) -> onnx.ModelProto:
    """The fp32 graph of ``ctx.model``, exported once per variant and shared by onnx, int8, static int8 and fp16.

    The dynamo exporter is the slow step of those four formats (0.6-1.2 s a call); each caller gets
    its own copy, since the quantizers and the float16 converter rewrite the graph they are given.
    """
    import onnx

    if "fp32" not in ctx.memo:
        ctx.memo["fp32"] = export_proto(ctx.model, ctx.opset).SerializeToString()
    return onnx.load_model_from_string(ctx.memo["fp32"])


def write_fp32(ctx: ExportContext, temp: Path) -> None:
    finish(fp32_proto(ctx), ctx, temp, "float32")


def write_fp16(ctx: ExportContext, temp: Path) -> None:
    """The shared fp32 graph through onnxruntime's float16 converter (a cast after the input and before the
    output), instead of a second dynamo export: the same graph and logits as exporting a half-precision copy
    of the model (variant E: identical outputs), 4 ms against 0.6-1.3 s."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    proto = convert_float_to_float16(fp32_proto(ctx), keep_io_types=True)
    OnnxModel(proto).topological_sort()  # the converter appends its casts at the end; ONNX wants producers first
    finish(proto, ctx, temp, "float16 weights and math, float32 I/O")


def write_int8(ctx: ExportContext, temp: Path) -> None:
    """onnxruntime dynamic quantization of the fp32 export: int8 weights, activations per batch."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto = fp32_proto(ctx)
    # The quantizer rewrites Gemm(transB=1) into MatMul on transposed weights; the exporter's
    # value_info still states the old shapes and would fail its shape inference. Dropping it
    # is what onnxruntime's recommended pre-processing achieves for a graph like this one.
    del proto.graph.value_info[:]
    try:
        with quiet_logger():  # it logs "consider pre-processing" to stderr on every call
            quantize_dynamic(proto, temp, weight_type=QuantType.QInt8, use_external_data_format=False)
        quantized = onnx.load_model_from_string(temp.read_bytes())
    except Exception as exc:
        raise ExportError(f"onnxruntime dynamic quantization failed: {type(exc).__name__}: {exc}") from exc
    finish(quantized, ctx, temp, "int8 weights (onnxruntime dynamic quantization), float32 I/O")


def finish(proto: onnx.ModelProto, ctx: ExportContext, temp: Path, precision: str) -> None:
    """Metadata in, every check passed, then one self-contained file."""
    import onnx

    onnx.helper.set_model_props(proto, {**ctx.metadata, "precision": precision})
    proto.producer_name, proto.doc_string = "fnnkit", f"fnnkit {ctx.metadata['variant']}: {precision}"
    proto.producer_version = ctx.metadata["fnnkit_version"]  # one producer for every flavour, not the exporter's torch
    try:
        onnx.checker.check_model(proto, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"the exported ONNX graph does not validate: {exc}") from exc
    check_interface(inferred)
    check_self_contained(proto, temp)
    temp.write_bytes(proto.SerializeToString())
