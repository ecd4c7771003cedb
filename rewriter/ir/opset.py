"""Bring a model to one default-domain opset, soundly.

Up (an older model to the working opset): onnx's version converter, whose up-adapters are complete.
Down (opset 18 and newer to 17, which every rule is written against): our own conversion, node by
node, including If/Loop/Scan bodies, because onnx's down-adapters are incomplete or unsound (Pad-18,
Split-18 and Gelu-20 have none; Reduce*-18 keep `noop_with_empty_axes`, which the checker refuses
only after the whole rewrite). For every node whose schema differs between the two opsets:

* an adapter below writes the older form (constant `axes` inputs become attributes, `num_outputs`
  becomes split sizes, Gelu / GroupNormalization / Mish / Swish are decomposed exactly, attributes
  that only select new behaviour are dropped when they hold their neutral value);
* otherwise, when the two schemas have the same inputs, outputs and attributes (the newer version
  only admits more types), the node is kept if its tensor types are allowed by the older schema;
* otherwise the conversion stops with a one-line error naming the op, its version and the opset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, defs, helper, numpy_helper, shape_inference, version_converter

from rewriter.errors import UserError
from rewriter.ir.build import dims_only
from rewriter.ir.constants import ConstantArrays
from rewriter.ir.scope import proto_subgraphs


class OpsetError(UserError):
    """A model cannot be brought to the requested opset without changing what it computes."""


def default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    raise UserError("model imports no default-domain (ai.onnx) opset")


def convert_model(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """`model` at default-domain `opset` (a new proto when anything changes)."""
    source = default_opset(model)
    if source == opset:
        return model
    newest = defs.onnx_opset_version()
    if source > newest:
        raise OpsetError(f"the model uses opset {source}, newer than this onnx package knows ({newest}): upgrade onnx")
    if source < opset:
        try:
            return version_converter.convert_version(model, opset)
        except Exception as exc:  # noqa: BLE001 - the converter raises bare RuntimeErrors
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise OpsetError(f"cannot convert the model from opset {source} to {opset}: {first}") from exc
    return _Down(model, source, opset).run()


def segment_at_opset(model: onnx.ModelProto, opset: int, name: str) -> onnx.ModelProto:
    """A Hailo segment written at the target's segment opset, checked: a conversion that cannot be
    done soundly, or whose result onnx's checker refuses, is a one-line error naming the segment."""
    try:
        converted = convert_model(model, opset)
        onnx.checker.check_model(converted, full_check=True)
    except OpsetError as exc:
        raise OpsetError(f"segment {name}: {exc}") from exc
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise OpsetError(
            f"segment {name} is not valid at the target's segment opset {opset}: {str(exc).splitlines()[0]}"
        ) from exc
    return converted


# ---- down-conversion -----------------------------------------------------------------------------


@dataclass
class _Scope:
    """One graph being converted: its constants (with the enclosing graphs') and new initializers."""

    graph: onnx.GraphProto
    parent: _Scope | None
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    added: list[onnx.TensorProto] = field(default_factory=list)

    def constant(self, name: str) -> np.ndarray | None:
        scope = self
        while scope is not None:
            if name in scope.constants:
                return scope.constants[name]
            scope = scope.parent
        return None


class _Down:
    def __init__(self, model: onnx.ModelProto, source: int, target: int):
        self.model = onnx.ModelProto()
        self.model.CopyFrom(model)
        self.source, self.target = source, target
        self.types = _value_types(model)
        self.counter = 0

    def run(self) -> onnx.ModelProto:
        self._graph(self.model.graph, None)
        for entry in self.model.opset_import:
            if entry.domain in ("", "ai.onnx"):
                entry.version = self.target
        return self.model

    # graph walk
    def _graph(self, graph: onnx.GraphProto, parent: _Scope | None) -> None:
        scope = _Scope(graph, parent)
        scope.constants = ConstantArrays(
            {init.name: init for init in graph.initializer if init.data_location != TensorProto.EXTERNAL}
        )
        out: list[onnx.NodeProto] = []
        for node in graph.node:
            for sub in proto_subgraphs(node):
                self._graph(sub, scope)
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                value = _constant_value(node)
                if value is not None:
                    scope.constants[node.output[0]] = value
            out.extend(self._node(node, scope) if node.domain in ("", "ai.onnx") else [node])
        del graph.node[:]
        graph.node.extend(out)
        graph.initializer.extend(scope.added)

    def _node(self, node: onnx.NodeProto, scope: _Scope) -> list[onnx.NodeProto]:
        new = _schema(node.op_type, self.source)
        if new is None:
            raise OpsetError(
                f"node {node.name or node.output[0]!r}: op {node.op_type} does not exist at opset "
                f"{self.source} (the model's opset)"
            )
        old = _schema(node.op_type, self.target)
        if old is not None and old.since_version == new.since_version:
            return [node]
        adapter = ADAPTERS.get(node.op_type) if self.target >= ADAPTED_FORMS_SINCE else None
        if adapter is not None:
            return adapter(_Ctx(self, node, scope, new.since_version))
        if old is not None and _signature(old) == _signature(new):
            self._check_types(node, old, new.since_version)
            return [node]
        raise self._unsound(
            node,
            new.since_version,
            "it has no form at that opset"
            if old is None
            else f"its inputs or attributes differ from {node.op_type}-{old.since_version}",
        )

    def _unsound(self, node: onnx.NodeProto, version: int, why: str) -> OpsetError:
        return OpsetError(
            f"cannot convert {node.op_type}-{version} (node {node.name or node.output[0]!r}) from "
            f"opset {self.source} to {self.target}: {why}"
        )

    def _check_types(self, node: onnx.NodeProto, old: defs.OpSchema, version: int) -> None:
        allowed = {c.type_param_str: set(c.allowed_type_strs) for c in old.type_constraints}
        formals = [(node.input, old.inputs), (node.output, old.outputs)]
        for names, params in formals:
            for i, name in enumerate(names):
                if not name or not params:
                    continue
                param = params[min(i, len(params) - 1)]  # variadic: the last formal repeats
                kind = self.types.get(name)
                if kind is not None and param.type_str in allowed and kind not in allowed[param.type_str]:
                    raise self._unsound(
                        node, version, f"{name!r} is {kind}, which {node.op_type}-{old.since_version} does not take"
                    )

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}__opset{self.target}_{self.counter}"


@dataclass
class _Ctx:
    """What an adapter sees: the node, its schema version, constants, types and name making."""

    down: _Down
    node: onnx.NodeProto
    scope: _Scope
    version: int

    def attr(self, name: str, default=None):
        for a in self.node.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    def input(self, i: int) -> str:
        return self.node.input[i] if i < len(self.node.input) else ""

    def const_input(self, i: int, what: str) -> np.ndarray | None:
        """The value of input i (None when absent); an error when it is present but not constant."""
        name = self.input(i)
        if not name:
            return None
        value = self.scope.constant(name)
        if value is None:
            raise self.unsound(f"its {what} input {name!r} is not a constant")
        return value

    def rank(self, name: str) -> int | None:
        shape = self.down.types.shapes.get(name)
        return None if shape is None else len(shape)

    def dim(self, name: str, axis: int) -> int | None:
        shape = self.down.types.shapes.get(name)
        if shape is None:
            return None
        d = shape[axis]
        return d if isinstance(d, int) and d > 0 else None

    def elem_type(self, name: str) -> int:
        return self.down.types.elem.get(name, TensorProto.FLOAT)

    def unsound(self, why: str) -> OpsetError:
        return self.down._unsound(self.node, self.version, why)

    def name(self, stem: str = "") -> str:
        return self.down.fresh(f"{self.node.name or self.node.output[0]}{stem}")

    def const(self, value, like: str | None = None) -> str:
        """A new initializer; floats take the element type of tensor `like`."""
        arr = np.asarray(value)
        if like is not None and arr.dtype.kind == "f":
            arr = arr.astype(helper.tensor_dtype_to_np_dtype(self.elem_type(like)))
        name = self.name("/const")
        self.scope.added.append(numpy_helper.from_array(arr, name))
        self.scope.constants[name] = arr
        return name

    def make(self, op: str, inputs: list[str], outputs: list[str] | None = None, **attrs) -> onnx.NodeProto:
        outputs = outputs or [self.name(f"/{op}")]
        return helper.make_node(op, inputs, outputs, name=self.name(f"/{op}"), **attrs)

    def keep(self, drop: tuple[str, ...] = (), inputs: list[str] | None = None, **attrs) -> onnx.NodeProto:
        """The node itself with attributes `drop` removed, optionally new inputs / attributes."""
        node = onnx.NodeProto()
        node.CopyFrom(self.node)
        kept = [a for a in node.attribute if a.name not in drop and a.name not in attrs]
        del node.attribute[:]
        node.attribute.extend(kept)
        node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items() if v is not None)
        if inputs is not None:
            while inputs and not inputs[-1]:
                inputs = inputs[:-1]
            del node.input[:]
            node.input.extend(inputs)
        return node


# ---- adapters: newer form -> opset-17 form --------------------------------------------------------
# The forms they write (Reduce* with an `axes` attribute, Pad-13, Split-13, decompositions into
# Div/Erf/Mul/Reshape/InstanceNormalization...) are valid at every opset from 13 to 17.
ADAPTED_FORMS_SINCE = 13

REDUCE_OPS = (
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSumSquare",
)


def _reduce(ctx: _Ctx) -> list[onnx.NodeProto]:
    """Reduce*-18: `axes` input (constant) -> attribute; no axes with noop_with_empty_axes=1 is Identity."""
    axes = ctx.const_input(1, "axes")
    noop = ctx.attr("noop_with_empty_axes", 0)
    if axes is None or axes.size == 0:
        if noop:
            return [ctx.make("Identity", [ctx.input(0)], list(ctx.node.output))]
        return [ctx.keep(("noop_with_empty_axes",), inputs=[ctx.input(0)])]
    return [ctx.keep(("noop_with_empty_axes",), inputs=[ctx.input(0)], axes=[int(a) for a in axes.ravel()])]


def _pad(ctx: _Ctx) -> list[onnx.NodeProto]:
    """Pad-18+: the `axes` input (constant) is expanded into pads for every axis; mode 'wrap' has no
    opset-17 form."""
    mode = ctx.attr("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in ("constant", "reflect", "edge"):
        raise ctx.unsound(f"mode {mode!r} does not exist before opset 19")
    axes = ctx.const_input(3, "axes")
    if axes is None:
        return [ctx.keep(inputs=[ctx.input(0), ctx.input(1), ctx.input(2)])]
    pads = ctx.const_input(1, "pads")
    rank = ctx.rank(ctx.input(0))
    if rank is None:
        raise ctx.unsound("its data input has no known rank (pin the inputs with --input-shape)")
    full = np.zeros(2 * rank, np.int64)
    n = axes.size
    for i, axis in enumerate(int(a) for a in axes.ravel()):
        axis = axis + rank if axis < 0 else axis
        full[axis], full[axis + rank] = pads.ravel()[i], pads.ravel()[i + n]
    return [ctx.keep(inputs=[ctx.input(0), ctx.const(full), ctx.input(2)])]


def _split(ctx: _Ctx) -> list[onnx.NodeProto]:
    """Split-18: `num_outputs` -> explicit split sizes (the last part may be smaller)."""
    count = ctx.attr("num_outputs")
    if count is None or ctx.input(1):
        return [ctx.keep(("num_outputs",))]
    axis = ctx.attr("axis", 0)
    rank = ctx.rank(ctx.input(0))
    size = ctx.dim(ctx.input(0), axis) if rank is not None else None
    if size is None:
        raise ctx.unsound(
            "num_outputs needs the split axis's size, which is unknown (pin the inputs with --input-shape)"
        )
    part = -(-size // count)
    sizes = [part] * (count - 1) + [size - part * (count - 1)]
    if sizes[-1] <= 0:
        raise ctx.unsound(f"num_outputs={count} does not divide an axis of size {size} into non-empty parts")
    return [ctx.keep(("num_outputs",), inputs=[ctx.input(0), ctx.const(np.asarray(sizes, np.int64))])]


def _gelu(ctx: _Ctx) -> list[onnx.NodeProto]:
    """Gelu-20 as the exporters wrote it before: x * 0.5 * (1 + erf(x / sqrt(2))), or the tanh form."""
    x, y = ctx.input(0), ctx.node.output[0]
    approximate = ctx.attr("approximate", b"none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
    if approximate == "none":
        d = ctx.make("Div", [x, ctx.const(np.sqrt(2.0), x)])
        e = ctx.make("Erf", [d.output[0]])
        a = ctx.make("Add", [e.output[0], ctx.const(1.0, x)])
        m = ctx.make("Mul", [x, a.output[0]])
        return [d, e, a, m, ctx.make("Mul", [m.output[0], ctx.const(0.5, x)], [y])]
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        sq = ctx.make("Mul", [x, x])
        cube = ctx.make("Mul", [sq.output[0], x])
        inner = ctx.make("Mul", [cube.output[0], ctx.const(0.044715, x)])
        s = ctx.make("Add", [x, inner.output[0]])
        k = ctx.make("Mul", [s.output[0], ctx.const(np.sqrt(2.0 / np.pi), x)])
        t = ctx.make("Tanh", [k.output[0]])
        a = ctx.make("Add", [t.output[0], ctx.const(1.0, x)])
        m = ctx.make("Mul", [x, a.output[0]])
        return [sq, cube, inner, s, k, t, a, m, ctx.make("Mul", [m.output[0], ctx.const(0.5, x)], [y])]
    raise ctx.unsound(f"approximate={approximate!r} is unknown")


def _group_norm(ctx: _Ctx) -> list[onnx.NodeProto]:
    """GroupNormalization-18/21 as torch exported GroupNorm before it: Reshape to [N, G, -1],
    InstanceNormalization, Reshape back, per-channel Mul + Add. (18 took scale/bias per group.)"""
    x, y = ctx.input(0), ctx.node.output[0]
    groups = int(ctx.attr("num_groups"))
    eps = float(ctx.attr("epsilon", 1e-5))
    rank = ctx.rank(x)
    channels = ctx.dim(x, 1) if rank else None
    if rank is None or channels is None:
        raise ctx.unsound("its input's rank and channel count are unknown (pin the inputs with --input-shape)")
    scale, bias = ctx.const_input(1, "scale"), ctx.const_input(2, "bias")
    if ctx.version == 18:  # per group: each group's value for its channels
        scale, bias = (np.repeat(v.ravel(), channels // groups) for v in (scale, bias))
    affine = (channels,) + (1,) * (rank - 2)
    shape = ctx.make("Shape", [x])
    grouped = ctx.make("Reshape", [x, ctx.const(np.asarray([0, groups, -1], np.int64))])
    norm = ctx.make(
        "InstanceNormalization",
        [grouped.output[0], ctx.const(np.ones(groups), x), ctx.const(np.zeros(groups), x)],
        epsilon=eps,
    )
    back = ctx.make("Reshape", [norm.output[0], shape.output[0]])
    mul = ctx.make("Mul", [back.output[0], ctx.const(scale.reshape(affine), x)])
    add = ctx.make("Add", [mul.output[0], ctx.const(bias.reshape(affine), x)], [y])
    return [shape, grouped, norm, back, mul, add]


def _mish(ctx: _Ctx) -> list[onnx.NodeProto]:
    """Mish-18: x * tanh(softplus(x))."""
    x = ctx.input(0)
    sp = ctx.make("Softplus", [x])
    t = ctx.make("Tanh", [sp.output[0]])
    return [sp, t, ctx.make("Mul", [x, t.output[0]], list(ctx.node.output))]


def _swish(ctx: _Ctx) -> list[onnx.NodeProto]:
    """Swish-24: x * sigmoid(alpha * x)."""
    x = ctx.input(0)
    alpha = float(ctx.attr("alpha", 1.0))
    pre = [ctx.make("Mul", [x, ctx.const(alpha, x)])] if alpha != 1.0 else []
    s = ctx.make("Sigmoid", [pre[0].output[0] if pre else x])
    return pre + [s, ctx.make("Mul", [x, s.output[0]], list(ctx.node.output))]


def _neutral_attrs(**neutral) -> Callable[[_Ctx], list[onnx.NodeProto]]:
    """Ops whose newer versions only added attributes: drop them when they hold their neutral value."""

    def adapt(ctx: _Ctx) -> list[onnx.NodeProto]:
        for name, ok in neutral.items():
            value = ctx.attr(name)
            value = value.decode() if isinstance(value, bytes) else value
            if value is not None and not ok(value):
                raise ctx.unsound(f"attribute {name}={value!r} has no equivalent at opset {ctx.down.target}")
        return [ctx.keep(tuple(neutral))]

    return adapt


def _resize(ctx: _Ctx) -> list[onnx.NodeProto]:
    mode = ctx.attr("coordinate_transformation_mode", b"half_pixel")
    if (mode.decode() if isinstance(mode, bytes) else mode) == "half_pixel_symmetric":
        raise ctx.unsound("coordinate_transformation_mode 'half_pixel_symmetric' does not exist before opset 19")
    return _neutral_attrs(
        antialias=lambda v: v == 0, axes=lambda v: False, keep_aspect_ratio_policy=lambda v: v == "stretch"
    )(ctx)


_FLOAT8 = {TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2, TensorProto.FLOAT8E5M2FNUZ}


def _cast(ctx: _Ctx) -> list[onnx.NodeProto]:
    """Cast-19+ / CastLike-19+: `saturate` only concerns float8, which opset 17 does not have; the
    types must exist at the older version."""
    ctx.down._check_types(ctx.node, _schema(ctx.node.op_type, ctx.down.target), ctx.version)
    to = ctx.attr("to") if ctx.node.op_type == "Cast" else ctx.down.types.elem.get(ctx.input(1))
    if to in _FLOAT8:
        raise ctx.unsound(f"it casts to {helper.tensor_dtype_to_string(to)}")
    return [ctx.keep(("saturate",))]


ADAPTERS: dict[str, Callable[[_Ctx], list[onnx.NodeProto]]] = {
    **{op: _reduce for op in REDUCE_OPS},
    "Pad": _pad,
    "Split": _split,
    "Gelu": _gelu,
    "GroupNormalization": _group_norm,
    "Mish": _mish,
    "Swish": _swish,
    "AveragePool": _neutral_attrs(dilations=lambda v: all(d == 1 for d in v)),
    "LpPool": _neutral_attrs(ceil_mode=lambda v: v == 0),
    "Resize": _resize,
    "Cast": _cast,
    "CastLike": _cast,
}


# ---- schema and type helpers ------------------------------------------------------------------


def _schema(op: str, opset: int) -> defs.OpSchema | None:
    try:
        return defs.get_schema(op, opset, "")
    except defs.SchemaError:
        return None


def _signature(schema: defs.OpSchema) -> tuple:
    """What a node can say under a schema: its formal inputs/outputs and attributes (not the types)."""
    return (
        [(p.name, int(p.option)) for p in schema.inputs],
        [(p.name, int(p.option)) for p in schema.outputs],
        sorted((k, int(a.type), a.required, a.default_value.SerializeToString()) for k, a in schema.attributes.items()),
    )


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name in ("value_int", "value_float", "value_ints", "value_floats"):
            return np.asarray(helper.get_attribute_value(attr))
    return None


@dataclass
class _Types:
    """Element types and dims of a model's tensors, by name."""

    elem: dict[str, int]  # tensor name -> TensorProto element type
    shapes: dict[str, list]  # tensor name -> dims (int, or str for symbolic/unknown)

    def get(self, name: str) -> str | None:
        """Type string as in schema constraints, e.g. 'tensor(float)'."""
        kind = _TYPE_STR.get(self.elem.get(name))
        return None if kind is None else f"tensor({kind})"


_TYPE_STR = {
    TensorProto.FLOAT: "float",
    TensorProto.DOUBLE: "double",
    TensorProto.FLOAT16: "float16",
    TensorProto.BFLOAT16: "bfloat16",
    TensorProto.INT8: "int8",
    TensorProto.INT16: "int16",
    TensorProto.INT32: "int32",
    TensorProto.INT64: "int64",
    TensorProto.UINT8: "uint8",
    TensorProto.UINT16: "uint16",
    TensorProto.UINT32: "uint32",
    TensorProto.UINT64: "uint64",
    TensorProto.BOOL: "bool",
    TensorProto.STRING: "string",
    TensorProto.COMPLEX64: "complex64",
    TensorProto.COMPLEX128: "complex128",
    TensorProto.FLOAT8E4M3FN: "float8e4m3fn",
    TensorProto.FLOAT8E4M3FNUZ: "float8e4m3fnuz",
    TensorProto.FLOAT8E5M2: "float8e5m2",
    TensorProto.FLOAT8E5M2FNUZ: "float8e5m2fnuz",
    TensorProto.INT4: "int4",
    TensorProto.UINT4: "uint4",
}


def _value_types(model: onnx.ModelProto) -> _Types:
    """Element types and shapes of every tensor, subgraphs included, as shape inference sees them
    at the model's own opset."""
    try:
        inferred = shape_inference.infer_shapes(dims_only(model))  # types and dims: no copy of the weights
    except Exception:  # noqa: BLE001 - types are a help here; conversion works without them
        inferred = model
    elem: dict[str, int] = {}
    shapes: dict[str, list] = {}

    def record(values) -> None:
        for v in values:
            t = v.type.tensor_type
            if v.type.HasField("tensor_type") and t.elem_type:
                elem[v.name] = t.elem_type
                if t.HasField("shape"):
                    shapes[v.name] = [
                        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim
                    ]

    def walk(graph: onnx.GraphProto) -> None:
        record(list(graph.input) + list(graph.output) + list(graph.value_info))
        for init in graph.initializer:
            elem[init.name] = init.data_type
            shapes[init.name] = list(init.dims)
        for node in graph.node:
            for sub in proto_subgraphs(node):
                walk(sub)

    walk(inferred.graph)
    return _Types(elem, shapes)
