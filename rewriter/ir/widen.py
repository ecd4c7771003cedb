"""Float types widened in an onnx model: float16/bfloat16 computed in float32 (the Hailo segments of
a half-precision export), float32 in float64 (the verifier's arbiter).

Widening changes no function of real numbers, only where it rounds: every value of the narrow type
is exactly representable in the wide one, so the weights, constants and inputs carry over exactly,
and each op computes the same expression with less rounding. `keep_interface` keeps the model's
contract: its narrow inputs are widened by a Cast at the start and its narrow outputs narrowed by
a Cast at the end, under their own names, so callers feed and receive the types they did.

Everything that fixes a float type is widened with the values: graph inputs, outputs and value
infos (nested sequence/optional types too), initializers, tensor attributes (Constant,
ConstantOfShape), the `to` of Cast and the `dtype` of the random and EyeLike ops, and the bodies of
If/Loop/Scan. What cannot be widened safely raises NotWidened with the reason: an op of a custom
domain (its kernels' types are unknown), a sparse initializer.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, numpy_helper

from rewriter.ir.scope import proto_subgraphs

NARROW_FLOATS = frozenset({TensorProto.FLOAT16, TensorProto.BFLOAT16})
_NUMPY = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64}
_TYPE_ATTRS = ("to", "dtype")  # INT attributes that name an element type (Cast, RandomNormal, EyeLike, ...)


class NotWidened(Exception):
    """The model holds something whose float type cannot be changed safely (the message says what)."""


def float_types_in(model: onnx.ModelProto, types: frozenset[int], nodes: bool = False) -> set[int]:
    """Which of `types` the model's declared tensors hold (graph inputs, outputs, value infos,
    initializers): after shape inference, value infos cover every intermediate value. `nodes`:
    also what its nodes make (Cast targets, tensor attributes, bodies), for a model not inferred."""
    return _types_in(model.graph, types, nodes)


def _types_in(g: onnx.GraphProto, types: frozenset[int], nodes: bool) -> set[int]:
    found = {t.data_type for t in g.initializer} & types
    for value in (*g.input, *g.output, *g.value_info):  # every model's load asks: tensors first, cheaply
        elem = value.type.tensor_type.elem_type
        if elem in types:
            found.add(elem)
        elif not elem:  # a sequence, optional, map or sparse type
            found.update(_elem_types(value.type) & types)
    for node in g.node if nodes else ():
        for attr in node.attribute:
            if attr.type == AttributeProto.INT and attr.name in _TYPE_ATTRS and attr.i in types:
                found.add(attr.i)
            elif attr.type == AttributeProto.TENSOR and attr.t.data_type in types:
                found.add(attr.t.data_type)
        for body in proto_subgraphs(node):
            found |= _types_in(body, types, nodes)
    return found


def _elem_types(tp: onnx.TypeProto) -> set[int]:
    kind = tp.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        return {getattr(tp, kind).elem_type}
    if kind in ("sequence_type", "optional_type"):
        return _elem_types(getattr(tp, kind).elem_type)
    if kind == "map_type":
        return _elem_types(tp.map_type.value_type)
    return set()


def widened(model: onnx.ModelProto, types: frozenset[int], to: int, keep_interface: bool) -> onnx.ModelProto:
    """A copy of `model` with every value of an element type in `types` in type `to` (above).
    Raises NotWidened."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    w = _Widener(types, to)
    g = out.graph
    narrow_io = _interface(g, types) if keep_interface else ([], [])
    w.graph(g)
    if keep_interface:
        _restore_interface(g, *narrow_io, to)
    return out


class _Widener:
    def __init__(self, types: frozenset[int], to: int):
        self.types, self.to = types, to

    def graph(self, g: onnx.GraphProto) -> None:
        if any(t.values.data_type in self.types for t in g.sparse_initializer):
            raise NotWidened("a sparse initializer")
        for value in (*g.input, *g.output, *g.value_info):
            self.type(value.type)
        for i, t in enumerate(g.initializer):
            if t.data_type in self.types:
                g.initializer[i].CopyFrom(self.tensor(t))
        for node in g.node:
            self.node(node)

    def type(self, tp: onnx.TypeProto) -> None:
        kind = tp.WhichOneof("value")
        if kind in ("tensor_type", "sparse_tensor_type"):
            inner = getattr(tp, kind)
            if inner.elem_type in self.types:
                inner.elem_type = self.to
        elif kind in ("sequence_type", "optional_type"):
            self.type(getattr(tp, kind).elem_type)
        elif kind == "map_type":
            self.type(tp.map_type.value_type)

    def tensor(self, t: onnx.TensorProto) -> onnx.TensorProto:
        values = numpy_helper.to_array(t).astype(_NUMPY[self.to])  # exact: the wide type holds every narrow value
        return numpy_helper.from_array(values, t.name)

    def node(self, node: onnx.NodeProto) -> None:
        if node.domain not in ("", "ai.onnx"):
            raise NotWidened(f"{node.domain}.{node.op_type} {node.name!r}: its kernels' float types are unknown")
        for attr in node.attribute:
            if attr.type == AttributeProto.TENSOR and attr.t.data_type in self.types:
                attr.t.CopyFrom(self.tensor(attr.t))
            elif attr.type == AttributeProto.TENSORS:
                for i, t in enumerate(attr.tensors):
                    if t.data_type in self.types:
                        attr.tensors[i].CopyFrom(self.tensor(t))
            elif attr.type == AttributeProto.INT and attr.name in _TYPE_ATTRS and attr.i in self.types:
                attr.i = self.to
            elif attr.type == AttributeProto.SPARSE_TENSOR and attr.sparse_tensor.values.data_type in self.types:
                raise NotWidened(f"{node.op_type} {node.name!r}: a sparse tensor attribute")
        for body in proto_subgraphs(node):
            self.graph(body)
        if self.to == TensorProto.DOUBLE and node.op_type == "Constant":
            _double_constant(node)


def _double_constant(node: onnx.NodeProto) -> None:
    """Constant's value_float(s) are float32 by definition: as a float64 `value` tensor."""
    for i, attr in enumerate(node.attribute):
        if attr.name in ("value_float", "value_floats"):
            values = np.asarray(attr.f if attr.name == "value_float" else list(attr.floats), np.float32)
            del node.attribute[i]
            node.attribute.append(
                onnx.helper.make_attribute("value", numpy_helper.from_array(values.astype(np.float64)))
            )
            return


def _interface(g: onnx.GraphProto, types: frozenset[int]) -> tuple[list, list]:
    """(graph inputs, graph outputs) of a type in `types`, as (name, type) before widening."""

    def narrow(values):
        out = []
        for v in values:
            if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type in types:
                tp = onnx.TypeProto()
                tp.CopyFrom(v.type)
                out.append((v.name, tp))
        return out

    constants = {t.name for t in g.initializer}  # an input with a default (IR < 4) is widened as the constant
    return narrow(v for v in g.input if v.name not in constants), narrow(g.output)


def _restore_interface(g: onnx.GraphProto, inputs: list, outputs: list, to: int) -> None:
    """Give the widened graph its original narrow inputs and outputs back: the graph reads each
    narrow input through a widening Cast, and each narrow output is the narrowing Cast of what its
    producer now writes under a new name. An output that is a graph input stays as it is."""
    taken = _all_names(g)
    input_names = {v.name for v in g.input}
    renames: dict[str, str] = {}
    first, last = [], []
    for name, tp in inputs:
        wide = renames[name] = _fresh(f"{name}_{_type_name(to)}", taken)
        first.append(onnx.helper.make_node("Cast", [name], [wide], _fresh(f"{name}/widen", taken), to=to))
        _set_type(g.input, name, tp)
    for name, tp in outputs:
        _set_type(g.output, name, tp)
        if name in input_names:
            continue
        wide = renames[name] = _fresh(f"{name}_{_type_name(to)}", taken)
        narrow_type = tp.tensor_type.elem_type
        last.append(onnx.helper.make_node("Cast", [wide], [name], _fresh(f"{name}/narrow", taken), to=narrow_type))
        for t in g.initializer:  # a constant output: the constant is renamed, the Cast gives it out
            if t.name == name:
                t.name = wide
        for v in g.value_info:
            if v.name == name:
                v.name = wide
    declared = {v.name for v in g.value_info}
    for name in (n for n in renames if renames[n] not in declared):  # the widened tensors' declarations
        wide_type = onnx.TypeProto()
        wide_type.CopyFrom(next(tp for n, tp in inputs + outputs if n == name))
        wide_type.tensor_type.elem_type = to
        g.value_info.append(onnx.helper.make_value_info(renames[name], wide_type))
    produced_here = {n for n, _ in outputs if n in renames}
    for node in g.node:
        _rename_reads(node, renames)
        for i, out in enumerate(node.output):
            if out in produced_here:
                node.output[i] = renames[out]
    nodes = first + list(g.node) + last
    del g.node[:]
    g.node.extend(nodes)


def _rename_reads(node: onnx.NodeProto, renames: dict[str, str]) -> None:
    """Rename what `node` reads, in its bodies too (they read enclosing names)."""
    for i, name in enumerate(node.input):
        if name in renames:
            node.input[i] = renames[name]
    for body in proto_subgraphs(node):
        for inner in body.node:
            _rename_reads(inner, renames)
        for out in body.output:  # a body output may be an enclosing tensor itself
            if out.name in renames:
                out.name = renames[out.name]


def _set_type(values, name: str, tp: onnx.TypeProto) -> None:
    for v in values:
        if v.name == name:
            v.type.CopyFrom(tp)


def _all_names(g: onnx.GraphProto) -> set[str]:
    names = {v.name for v in (*g.input, *g.output, *g.value_info)} | {t.name for t in g.initializer}
    for node in g.node:
        names.update(node.input)
        names.update(node.output)
        names.add(node.name)
        for body in proto_subgraphs(node):
            names |= _all_names(body)
    return names


def _fresh(base: str, taken: set[str]) -> str:
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def _type_name(code: int) -> str:
    return onnx.helper.tensor_dtype_to_np_dtype(code).name


class TargetWidening:
    """The load step for a target whose segments hold float32 but not a model's narrow floats: the
    model computes in float32 behind its own narrow inputs and outputs (`record` says what was
    done, or why the model kept its types: then those ops stay on the host, as the summary says)."""

    def __init__(self, segment_dtypes):
        self.allowed = set(segment_dtypes)
        self.record: dict | None = None

    def __call__(self, model: onnx.ModelProto) -> onnx.ModelProto:
        narrow = {t for t in float_types_in(model, NARROW_FLOATS) if _type_name(t) not in self.allowed}
        if not narrow or "float32" not in self.allowed:
            return model
        names = sorted(_type_name(t) for t in narrow)
        try:
            wide = widened(model, frozenset(narrow), TensorProto.FLOAT, keep_interface=True)
        except NotWidened as exc:
            self.record = {"kept": names, "reason": str(exc)}
            return model
        self.record = {"widened": names, "to": "float32"}
        return wide
