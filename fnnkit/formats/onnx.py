"""ONNX vetting: what every loader and ``fnnkit verify`` check on an ONNX file's bytes; runs nothing.

Needs the ``onnx`` package only (no torch, no runtime): the reader half of the ONNX formats.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnnkit.errors import ArtifactError, ExportError
from fnnkit.variants import INPUT_DIM, NUM_CLASSES

if TYPE_CHECKING:
    import onnx

INPUT_NAME, OUTPUT_NAME = "input", "logits"  # the interface every fnnkit ONNX file has


def check_interface(proto: onnx.ModelProto) -> None:
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
        check_interface(proto)
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
