"""gs.export_onnx(graph, do_type_check=False), the same message, built inside the ModelProto.

onnx-graphsurgeon's exporter copies every weight three times after reading it out of numpy:
onnx.helper.make_tensor copies the bytes into a TensorProto, make_graph copies that into the
graph's initializer list, and make_model copies the whole graph into the model. Here a rewritten
weight (a numpy array) is encoded once, in place (build.add_initializer), an untouched one is copied
once from the TensorProto it was loaded from, and nothing is copied into the model afterwards.
Everything else (nodes, attributes, subgraphs, functions, opset imports, odd dtypes) is exported by
onnx-graphsurgeon's own pieces, in its order: tests/foundation/test_fd_export.py compares the bytes.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import helper
from onnx_graphsurgeon.exporters.onnx_exporter import (
    OnnxExporter,
    check_duplicate_node_names,
    dtype_to_onnx,
    update_import_domains,
)
from onnx_graphsurgeon.ir.tensor import LazyValues, SparseValues

from rewriter.ir.build import add_initializer, add_stub, copy_tensor, encodes_raw, is_large_float


def export_model(graph: gs.Graph, deferred: dict[str, gs.Constant] | None = None) -> onnx.ModelProto:
    """`deferred`: large float weights (build.is_large_float) are exported as name, type and dims
    only and listed there by name; write_initializer writes each one where it is wanted (into the
    segment models, rather than into the whole model and then copied out of it)."""
    check_duplicate_node_names(graph.nodes)
    model = onnx.ModelProto()
    model.ir_version = onnx.IR_VERSION  # as onnx.helper.make_model; the graph's own, if any, below
    out = model.graph
    types = _OnnxTypes()
    out.node.extend([OnnxExporter.export_node(n) for n in graph.nodes])
    out.name = graph.name
    out.input.extend([types.value_info(t) for t in graph.inputs])
    out.output.extend([types.value_info(t) for t in graph.outputs])
    tensors = graph.tensors()
    sparse = []
    for t in tensors.values():
        if not isinstance(t, gs.Constant):
            continue
        values = getattr(t, "_values", None)  # an array once loaded or made by a rewrite
        if isinstance(values, SparseValues):
            sparse.append(OnnxExporter.export_sparse_tensor_proto(t))
        elif deferred is not None and (large := _large_float(t, values)) is not None:
            add_stub(out, t.name, *large)
            deferred[t.name] = t
        else:
            write_initializer(out, t)
    out.sparse_initializer.extend(sparse)
    for t in graph.inputs + graph.outputs:
        tensors.pop(t.name, None)
    out.value_info.extend(
        [
            types.value_info(t)
            for t in tensors.values()
            if isinstance(t, gs.Variable) and (t.dtype is not None or t.shape is not None)
        ]
    )
    if graph.doc_string:
        out.doc_string = graph.doc_string
    model.opset_import.extend(update_import_domains(graph))
    model.functions.extend([OnnxExporter.export_function(f) for f in graph.functions])
    model.producer_name = graph.producer_name
    model.producer_version = graph.producer_version
    if graph.ir_version is not None:
        model.ir_version = graph.ir_version
    return model


def write_initializer(out: onnx.GraphProto, t: gs.Constant) -> None:
    """`out.initializer` gains the TensorProto gs's exporter makes of constant `t`."""
    values = getattr(t, "_values", None)  # an array once loaded or made by a rewrite
    if _encoded_in_place(t, values):
        add_initializer(out, t.name, values)
    else:  # loaded lazily (its TensorProto, copied once here) or an unusual encoding
        copy_tensor(out, OnnxExporter.export_tensor_proto(t))


def _large_float(t: gs.Constant, values) -> tuple[int, tuple] | None:
    """(data type, dims) of `t` when write_initializer would write a large float weight as raw
    bytes: those are the ones a dims-only stub stands for, as inference's own copies hold them."""
    if _encoded_in_place(t, values):
        code, dims = helper.np_dtype_to_tensor_dtype(values.dtype), values.shape
        return (code, dims) if is_large_float(code, dims, True) else None
    if isinstance(values, LazyValues) and t.name:
        proto = values.tensor
        if is_large_float(proto.data_type, proto.dims, proto.HasField("raw_data")):
            return proto.data_type, tuple(proto.dims)
    return None


def _encoded_in_place(t: gs.Constant, values) -> bool:
    """gs would write this constant as make_tensor(name, type, dims, values.tobytes(), raw=True):
    for these dtypes that is the message add_initializer builds (a named tensor, exported as its
    own dtype, no data_location)."""
    if not isinstance(values, np.ndarray) or not encodes_raw(values) or not t.name:
        return False
    export = getattr(t, "export_dtype", values.dtype)
    return t.data_location is None and not isinstance(export, int) and np.dtype(export) == values.dtype


class _OnnxTypes:
    """OnnxExporter.export_value_info_proto with the element type of each dtype looked up once
    (gs's dtype_to_onnx builds a table of ml_dtypes on every call)."""

    def __init__(self):
        self._codes: dict = {}

    def value_info(self, t: gs.Tensor) -> onnx.ValueInfoProto:
        if t.dtype is None or not (isinstance(t, gs.Constant) or t.type == "tensor_type"):
            return OnnxExporter.export_value_info_proto(t, do_type_check=False)
        code = self._codes.get(t.dtype)
        if code is None:
            code = self._codes[t.dtype] = dtype_to_onnx(t.dtype)
        return onnx.helper.make_tensor_value_info(t.name, code, t.shape)
