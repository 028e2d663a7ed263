"""ONNX files: fp32 (the reference export), int8 (dynamic quantization) and fp16 (for GPUs).

Static int8 lives in ``quantized``; it reuses ``fp32_proto`` and ``finish`` from here.

All three keep the one interface every backend expects: input ``input`` float32
[batch, 784], output ``logits`` float32 [batch, 10], a dynamic batch axis. fp16 casts inside
the graph, so a caller never changes its input dtype. Files are self-contained: fnnkit
serialises the ModelProto itself (the exporter never gets to write a ``.data`` file beside
it), and the loader refuses any ONNX file that points at external data.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from fnnkit.errors import ArtifactError, ExportError
from fnnkit.export.base import (
    EXAMPLE_BATCH,
    INPUT_NAME,
    OUTPUT_NAME,
    ExportContext,
    Runner,
    as_float_cpu,
    quiet_logger,
    quiet_torch_internals,
)
from fnnkit.export.onnx_runtime import PROVIDERS, SessionRefused, ort_session, run_failed
from fnnkit.variants import INPUT_DIM, NUM_CLASSES

if TYPE_CHECKING:
    import onnx


class HalfPrecision(torch.nn.Module):
    """fp16 weights and arithmetic behind the float32 interface every other format has."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.inner = copy.deepcopy(model).half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.half()).float()


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
    """The fp32 graph of ``ctx.model``, exported once per variant and shared by onnx, int8 and static int8.

    The dynamo exporter is the slow step of those three formats (about 0.4 s each); each caller gets
    its own copy, since the quantizers rewrite the graph they are given.
    """
    import onnx

    if "fp32" not in ctx.memo:
        ctx.memo["fp32"] = export_proto(ctx.model, ctx.opset).SerializeToString()
    return onnx.load_model_from_string(ctx.memo["fp32"])


def write_fp32(ctx: ExportContext, temp: Path) -> None:
    finish(fp32_proto(ctx), ctx, temp, "float32")


def write_fp16(ctx: ExportContext, temp: Path) -> None:
    finish(export_proto(HalfPrecision(ctx.model), ctx.opset), ctx, temp, "float16 weights and math, float32 I/O")


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
    _check_interface(inferred)
    check_self_contained(proto, temp)
    temp.write_bytes(proto.SerializeToString())


def _check_interface(proto: onnx.ModelProto) -> None:
    """One float32 input [batch, 784] and one float32 output [batch, 10], as backends expect."""
    import onnx

    def signature(values: Any) -> list[tuple[str, int, list[str | int]]]:
        return [
            (v.name, v.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
            for v in values
        ]

    found = (signature(proto.graph.input), signature(proto.graph.output))
    expected = ([(INPUT_NAME, onnx.TensorProto.FLOAT, ["batch", INPUT_DIM])],
                [(OUTPUT_NAME, onnx.TensorProto.FLOAT, ["batch", NUM_CLASSES])])  # fmt: skip
    if found != expected:
        raise ExportError(f"exported ONNX interface is {found}, expected {expected} (name, float32=1, shape)")


def open_onnx(data: bytes, path: Path, device: str) -> tuple[Any, Runner]:
    """An onnxruntime session on bytes already verified and vetted (``core.read_exported``, or our own temp file)."""
    try:
        session = ort_session(data, path, PROVIDERS[device])
    except SessionRefused as exc:
        raise ExportError(f"{exc}; if it names an opset, export with a lower --opset") from None

    def run(x: torch.Tensor) -> torch.Tensor:
        try:
            out = session.run([OUTPUT_NAME], {INPUT_NAME: x.detach().cpu().numpy()})[0]
        except Exception as exc:  # onnxruntime's own types; Ctrl-C (Interrupted) is not an Exception
            raise run_failed(path, exc) from None
        if tuple(out.shape) != (x.shape[0], NUM_CLASSES):
            raise ArtifactError(f"{path} returned shape {tuple(out.shape)}, not [{x.shape[0]}, {NUM_CLASSES}]")
        return as_float_cpu(out)

    return session, run


# The only ops an fnnkit MLP needs, per flavour: no shape-producing op (Reshape, ConstantOfShape,
# Expand, Tile, Range, Shape...), no control flow, no custom domain can reach a session.
OPS_FP32 = frozenset({"Gemm", "MatMul", "Add", "Relu", "Tanh", "Sigmoid", "Identity"})
OPS_FP16 = OPS_FP32 | {"Cast"}
OPS_INT8 = OPS_FP32 | {"Cast", "Mul", "DynamicQuantizeLinear", "MatMulInteger", "QuantizeLinear", "DequantizeLinear"}
OPS_ANY = OPS_FP16 | OPS_INT8


def vet_onnx(data: bytes, path: Path, spec=None, ops: frozenset[str] = OPS_ANY) -> None:
    """The one ONNX vetting, used by every loader and by ``fnnkit verify``; runs nothing.

    Parse, refuse external data, ``onnx.checker``, the [batch, 784] -> [batch, 10] interface, then
    the graph is the expected MLP: only ``ops``, default domain only, no functions or subgraphs,
    initializers of rank <= 2 whose shapes are the variant's layers (when ``spec`` is known).
    """
    import onnx

    try:
        proto = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ArtifactError(f"{path} is not a readable ONNX file ({type(exc).__name__}); re-export it") from None
    check_self_contained(proto, path)  # first: the checker would go looking for external files
    try:
        onnx.checker.check_model(proto, full_check=True)  # ~15 ms here; a malformed graph is named, not "unavailable"
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ArtifactError(f"{path}: onnx.checker {type(exc).__name__}: {exc}; re-export it") from None
    try:
        _check_interface(proto)
        check_mlp_graph(proto, spec, ops)
    except ExportError as exc:
        raise ArtifactError(f"{path}: {exc}; re-export it") from None


def check_mlp_graph(proto: onnx.ModelProto, spec, ops: frozenset[str]) -> None:
    """Raise ExportError unless the graph is a plain MLP built from ``ops`` with ``spec``'s layer shapes."""
    import onnx

    subgraph = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    domains = {o.domain for o in proto.opset_import} - {"", "ai.onnx"}
    if domains or proto.functions:
        raise ExportError(f"the graph imports other op domains or functions ({', '.join(sorted(domains))})")
    for node in proto.graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in ops:
            raise ExportError(f"op {node.domain or 'ai.onnx'}.{node.op_type[:40]} is not part of an fnnkit MLP")
        if any(a.type in subgraph for a in node.attribute):
            raise ExportError(f"op {node.op_type} carries a subgraph; an fnnkit MLP has none")
    shapes = [tuple(t.dims) for t in proto.graph.initializer]
    if any(len(s) > 2 for s in shapes):
        raise ExportError("an initializer has rank > 2; an fnnkit MLP holds matrices, vectors and scalars only")
    if spec is None:
        return
    matrices = sorted(tuple(sorted(s)) for s in shapes if len(s) == 2)
    expected = sorted(tuple(sorted(d)) for d in spec.layer_dims)
    biases = {o for _, o in spec.layer_dims}
    if matrices != expected or any(len(s) == 1 and s[0] not in biases for s in shapes):
        raise ExportError(
            f"initializer shapes {sorted(s for s in shapes if s)[:12]} are not variant {spec.name}'s "
            f"layers {spec.layer_dims}"
        )


def check_self_contained(proto: onnx.ModelProto, path: Path) -> None:
    """Refuse a model whose weights live in another file.

    fnnkit never writes external data, so a reference to one means the file came from
    elsewhere or was altered; following it could read any file the process can (an
    absolute path, ``../..``, or a symlink pointing out of the folder).
    """
    import onnx

    for tensor in _all_tensors(proto):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            raise ArtifactError(
                f"{path} references external data {location!r} for tensor {tensor.name!r} "
                f"({_where(location, Path(path).parent)}); fnnkit writes self-contained ONNX files and never reads "
                "weights from other files, so this one was not written by fnnkit or was altered. Refusing to open "
                "it; re-create it with `fnnkit export --force`"
            )


def _where(location: str, folder: Path) -> str:
    if not location:
        return "no location given"
    if os.path.isabs(location):
        return "an absolute path"
    target = folder / location
    if os.path.normpath(location).startswith(os.pardir):
        return "a path outside its folder"
    if target.is_symlink() and not target.resolve().is_relative_to(folder.resolve()):
        return f"a symlink out of its folder, to {target.resolve()}"
    return "a file beside it"


def _all_tensors(proto: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    yield from _graph_tensors(proto.graph)
    for function in proto.functions:
        yield from _node_tensors(function.node)


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _node_tensors(graph.node)


def _node_tensors(nodes: Iterable[onnx.NodeProto]) -> Iterator[onnx.TensorProto]:
    for node in nodes:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _graph_tensors(attribute.g)
            for graph in attribute.graphs:
                yield from _graph_tensors(graph)
