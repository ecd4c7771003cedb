"""gs.import_onnx(model), the same graph, made with rewriter.ir.objects' constructors.

onnx-graphsurgeon's importer builds every tensor and node through its constructors (an overridden
__setattr__ per attribute, synchronized lists filled element by element) and re-derives each
tensor's numpy dtype from onnx's type tables: 50-75 ms for the ConvTasNet example's 788 nodes and
1,185 tensors on this container, and `rewrite` imports a model at least once. Here the same objects
come out in the same order, linked the same way, in 20-35 ms (tests/foundation/test_fd_import.py
compares the two graphs object by object).

What this reads is what the graphs reaching it hold. A model with anything else (local functions,
sparse initializers, a body (GRAPH attribute), attribute kinds gs skips or references, values of a
non-tensor type, a data type numpy lacks, no default-domain opset) goes to gs.import_onnx whole,
so gs's own handling and warnings stay exactly as they are.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx_graphsurgeon.importers.onnx_importer import get_numpy_type

from rewriter.ir.objects import lazy_constant, node, variable

_A = onnx.AttributeProto
_SIMPLE = {_A.FLOAT: "f", _A.INT: "i", _A.INTS: "ints", _A.FLOATS: "floats"}
_DTYPES: dict[int, np.dtype | None] = {}


class _Unusual(Exception):
    """The model holds something only gs's own importer reads: import it with that."""


def _dtype(code: int) -> np.dtype:
    try:
        dtype = _DTYPES[code]
    except KeyError:
        dtype = _DTYPES[code] = get_numpy_type(code)
    if dtype is None:  # bfloat16, float8, undefined: gs keeps the onnx code and warns
        raise _Unusual
    return dtype


def _constant(tensor: onnx.TensorProto) -> gs.Constant:
    location = int(tensor.data_location) if tensor.HasField("data_location") else None
    return lazy_constant(tensor, _dtype(tensor.data_type), location)


def _typed(value: onnx.ValueInfoProto) -> tuple | None:
    """(dtype, shape) of a value whose type is given, None when it is not (gs: Variable(name))."""
    kind = value.type
    if kind.ByteSize() == 0:
        return None
    if not kind.HasField("tensor_type"):
        raise _Unusual
    tensor = kind.tensor_type
    shape = None
    if tensor.HasField("shape"):
        shape = []
        for dim in tensor.shape.dim:
            which = dim.WhichOneof("value")
            shape.append(dim.dim_param if which == "dim_param" else dim.dim_value if which == "dim_value" else None)
    return _dtype(tensor.elem_type), shape


def _attrs(proto: onnx.NodeProto) -> OrderedDict:
    attrs = OrderedDict()
    for attr in proto.attribute:
        if attr.ref_attr_name:
            raise _Unusual
        kind = attr.type
        field = _SIMPLE.get(kind)
        if field is not None:
            value = getattr(attr, field)
            attrs[attr.name] = value if kind == _A.FLOAT or kind == _A.INT else list(value)
        elif kind == _A.STRING:
            attrs[attr.name] = attr.s.decode()
        elif kind == _A.STRINGS:
            attrs[attr.name] = [s.decode() for s in attr.strings]
        elif kind == _A.TENSOR:
            attrs[attr.name] = _constant(attr.t)
        else:  # a body, or a kind gs skips with a warning
            raise _Unusual
    return attrs


def _opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain == "" or entry.domain == "ai.onnx":
            return entry.version
    raise _Unusual  # gs warns and takes its default


def _import(model: onnx.ModelProto) -> gs.Graph:
    if model.functions or model.graph.sparse_initializer:
        raise _Unusual
    opset = _opset(model)
    g = model.graph
    tensors: dict[str, gs.Tensor] = {}
    for init in g.initializer:
        if init.name not in tensors:
            tensors[init.name] = _constant(init)
    for value in g.value_info:  # repeated entries may add what an earlier one lacked (gs: overwrite)
        typed = _typed(value)
        known = tensors.get(value.name)
        if known is None:
            tensors[value.name] = variable(value.name, *typed) if typed else variable(value.name)
        elif isinstance(known, gs.Variable):
            dtype, shape = typed if typed else (None, None)
            known.__dict__["dtype"] = known.dtype or dtype
            known.__dict__["shape"] = known.shape or shape
    inits = {t.name for t in g.initializer}

    def declared(value: onnx.ValueInfoProto) -> gs.Tensor:
        known = tensors.get(value.name)
        if known is None:
            typed = _typed(value)
            known = tensors[value.name] = variable(value.name, *typed) if typed else variable(value.name)
        return known

    inputs = [declared(v) for v in g.input if v.name not in inits]
    outputs = [declared(v) for v in g.output]

    def used(name: str) -> gs.Tensor:
        known = tensors.get(name)
        if known is None:
            if not name:  # an omitted optional input or output: a fresh empty tensor each time
                return variable("")
            known = tensors[name] = variable(name)
        return known

    nodes = [
        node(
            p.op_type,
            p.name,
            _attrs(p),
            [used(x) for x in p.input],
            [used(y) for y in p.output],
            p.domain if p.HasField("domain") else None,
        )
        for p in g.node
    ]
    return gs.Graph(
        nodes=nodes,
        inputs=inputs,
        outputs=outputs,
        name=g.name,
        doc_string=g.doc_string,
        producer_name=model.producer_name,
        producer_version=model.producer_version,
        opset=opset,
        import_domains=model.opset_import,
        functions=[],
        ir_version=model.ir_version,
    )


def import_model(model: onnx.ModelProto) -> gs.Graph:
    """gs.import_onnx(model)."""
    try:
        return _import(model)
    except _Unusual:
        return gs.import_onnx(model)
