"""Random ONNX graphs over the ops the hailo8 target knows, reproducible from (seed, index).

1-D (N, C, L) and 2-D (N, C, H, W) models: convs with groups (dense, grouped, depthwise), strides,
dilations and padding, ConvTranspose, BatchNormalization, max/average/global pools, activations,
Add/Sub/Mul/Concat skip structures (a value used twice, a tensor with itself), constants broadcast
per channel, Div, Pad, Slice, Resize, Softmax, ReduceMean, Reshape/Transpose/Squeeze/Unsqueeze
between 1-D and 2-D, FSQ-style Round, If nodes whose branches read main-graph tensors, Gemm heads,
ConvNeXt-style channels-last blocks (Transpose, LayerNorm, MatMul, GELU, layer scale, Transpose
back), middle tensors as extra graph outputs. Every node's output shape comes from onnx's strict shape
inference; a model is kept only if onnxruntime runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
ACTIVATIONS = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "HardSigmoid", "HardSwish", "Clip", "PRelu")


@dataclass
class Generated:
    model: onnx.ModelProto
    seed: int
    index: int
    ops: list[str]
    rounded: list[tuple[str, str]] = field(default_factory=list)  # (Round input, Round output) graph outputs
    rejected: int = 0  # candidates before this one that onnxruntime refused

    @property
    def name(self) -> str:
        return f"g{self.seed}_{self.index}"


class _Builder:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.shapes: dict[str, list[int]] = {}
        self.live: list[str] = []  # float tensors of rank 3/4 new ops may read
        self.heads: list[str] = []  # rank-2 tensors (after a Gemm head)
        self.count = 0
        self.ops: list[str] = []

    def fresh(self, base: str) -> str:
        self.count += 1
        return f"{base}{self.count}"

    def const(self, array: np.ndarray, base="k") -> str:
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weights(self, shape, scale=None) -> str:
        fan_in = max(1, int(np.prod(shape[1:])))
        scale = scale or 1.0 / math.sqrt(fan_in)
        return self.const((self.rng.standard_normal(shape) * scale).astype(np.float32), "w")

    def add_input(self, shape) -> str:
        name = f"in{len(self.inputs)}"
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        self.shapes[name] = list(shape)
        self.live.append(name)
        return name

    def model(self, outputs) -> onnx.ModelProto:
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, self.shapes[o]) for o in outputs]
        graph = helper.make_graph(self.nodes, "fuzz", self.inputs, outs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        return model

    def try_node(self, op, inputs, attrs=None, extra_nodes=(), outputs=1, **kw) -> list[str] | None:
        """Append `extra_nodes` + the node; keep them if strict shape inference gives every output a
        static positive shape, else roll back and return None."""
        outs = [self.fresh(op.lower()) for _ in range(outputs)]
        node = helper.make_node(op, inputs, outs, name=self.fresh(op), **(attrs or {}), **kw)
        added = list(extra_nodes) + [node]
        self.nodes.extend(added)
        try:
            inferred = onnx.shape_inference.infer_shapes(self.model([]), strict_mode=True)
        except Exception:  # noqa: BLE001 - an invalid combination: roll back
            del self.nodes[-len(added) :]
            return None
        types = {v.name: v.type.tensor_type for v in inferred.graph.value_info}
        shapes = []
        for o in outs:
            t = types.get(o)
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim] if t else None
            if not dims or any(d <= 0 for d in dims) or t.elem_type != TensorProto.FLOAT or math.prod(dims) > 1 << 18:
                del self.nodes[-len(added) :]
                return None
            shapes.append(dims)
        for o, dims in zip(outs, shapes):
            self.shapes[o] = dims
        self.ops.append(op)
        return outs


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


class GraphFuzzer:
    def __init__(self, seed: int):
        self.seed = seed

    def generate(self, index: int) -> Generated:
        """The index-th graph; candidates onnxruntime cannot run are redrawn (counted in `rejected`)."""
        for attempt in range(20):
            made = self._candidate(index, attempt)
            if runs_on_onnxruntime(made.model):
                made.rejected = attempt
                return made
        raise RuntimeError(f"no valid graph for seed {self.seed} index {index} in 20 attempts")

    def _candidate(self, index: int, attempt: int) -> Generated:
        rng = np.random.default_rng([self.seed, index, attempt])
        b = _Builder(rng)
        rank = int(rng.choice([3, 4]))
        wide = rng.random() < 0.08  # long 1-D inputs with many channels: exercises tiling
        if rank == 3:
            channels = int(rng.choice([1, 2, 3, 4, 8, 16, 24, 32])) if not wide else int(rng.choice([64, 80, 96]))
            shape = [1, channels, int(rng.integers(300, 700)) if wide else int(rng.integers(3, 90))]
        else:
            shape = [1, int(rng.choice([1, 2, 3, 4, 8, 16, 24])), int(rng.integers(2, 20)), int(rng.integers(2, 24))]
        first = b.add_input(shape)
        if rng.random() < 0.15:
            b.add_input(shape)  # a second input, combined by a skip op
        rounded: list[tuple[str, str]] = []
        steps = int(rng.integers(1, 15))
        for _ in range(steps * 3):  # attempts; invalid combinations are rolled back
            if len(b.ops) >= steps:
                break
            op = str(rng.choice(list(OP_WEIGHTS), p=np.array(list(OP_WEIGHTS.values())) / sum(OP_WEIGHTS.values())))
            if b.heads:
                op = "head_act"
            made = BUILDERS[op](b, rng)
            if op == "round" and made:
                rounded.append(made)
        outputs = self._outputs(b, rng, first)
        for pre, post in rounded:
            for t in (pre, post):
                if t not in outputs:
                    outputs.append(t)
        model = b.model(outputs)
        onnx.checker.check_model(model, full_check=True)
        return Generated(model, self.seed, index, b.ops, rounded)

    @staticmethod
    def _outputs(b: _Builder, rng, first: str) -> list[str]:
        last = (b.heads or b.live)[-1]
        outputs = [last]
        middle = [t for t in b.live[:-1] if t not in outputs and not t.startswith("in")]
        if middle and rng.random() < 0.3:
            outputs.append(str(rng.choice(middle)))  # a middle tensor as a graph output too
        if rng.random() < 0.05:
            outputs.append(first)  # the input itself as an output
        return outputs


def random_inputs(model: onnx.ModelProto, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        v.name: rng.standard_normal([d.dim_value for d in v.type.tensor_type.shape.dim]).astype(np.float32)
        for v in model.graph.input
    }


def runs_on_onnxruntime(model: onnx.ModelProto) -> bool:
    import onnxruntime as ort

    try:
        options = ort.SessionOptions()
        options.log_severity_level = 4  # the refusals are expected; redrawing is the answer
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        outputs = session.run(None, random_inputs(model))
    except Exception:  # noqa: BLE001 - the generator made something onnxruntime refuses: redraw
        return False
    return all(np.isfinite(o).all() for o in outputs)


# ---- op builders: each reads live tensors and appends at most a few nodes ------------------------------
def _pick(b: _Builder, rng, ranks=(3, 4)) -> str | None:
    options = [t for t in b.live if len(b.shapes[t]) in ranks]
    if not options:
        return None
    recent = options[-3:]
    return str(rng.choice(recent if rng.random() < 0.7 else options))


def _push(b: _Builder, outs):
    if outs:
        b.live.extend(outs)
    return outs


def conv(b: _Builder, rng):
    x = _pick(b, rng)
    if x is None:
        return None
    shape = b.shapes[x]
    spatial = len(shape) - 2
    cin = shape[1]
    kind = rng.random()
    if kind < 0.2:
        group = cin  # depthwise (x multiplier)
        cout = cin * int(rng.choice([1, 1, 2]))
    elif kind < 0.35:
        group = int(rng.choice(_divisors(cin)))  # grouped
        cout = group * int(rng.integers(1, max(2, 48 // group) + 1))
    else:
        group, cout = 1, int(rng.choice([1, 2, 4, 8, 12, 16, 24, 32, 48]))
    cout = max(cout, group)
    cout -= cout % group
    kernel = [int(rng.choice([1, 2, 3, 3, 5])) for _ in range(spatial)]
    dil = [int(rng.choice([1, 1, 2, 3])) for _ in range(spatial)]
    stride = [int(rng.choice([1, 1, 2])) for _ in range(spatial)]
    attrs = {"kernel_shape": kernel, "strides": stride, "dilations": dil, "group": group}
    if rng.random() < 0.15:
        attrs["auto_pad"] = str(rng.choice(["SAME_UPPER", "SAME_LOWER", "VALID"]))
        if attrs["auto_pad"] != "VALID":
            attrs["dilations"] = [1] * spatial  # onnxruntime: no dilation with SAME
    else:
        pads = [int(rng.integers(0, (k - 1) * d + 1)) for k, d in zip(kernel, dil)]
        ends = [int(rng.integers(0, (k - 1) * d + 1)) for k, d in zip(kernel, dil)]
        attrs["pads"] = pads + ends
    w = b.weights([cout, cin // group, *kernel])
    inputs = [x, w]
    if rng.random() < 0.7:
        inputs.append(b.const((rng.standard_normal(cout) * 0.1).astype(np.float32), "b"))
    return _push(b, b.try_node("Conv", inputs, attrs))


def conv_transpose(b: _Builder, rng):
    x = _pick(b, rng)
    if x is None:
        return None
    shape = b.shapes[x]
    spatial = len(shape) - 2
    kernel = [int(rng.choice([1, 2, 3])) for _ in range(spatial)]
    stride = [int(rng.choice([1, 2])) for _ in range(spatial)]
    pads = [int(rng.integers(0, k)) for k in kernel] * 2
    cout = int(rng.choice([1, 4, 8, 16]))
    w = b.weights([shape[1], cout, *kernel], scale=0.3)
    return _push(b, b.try_node("ConvTranspose", [x, w], {"kernel_shape": kernel, "strides": stride, "pads": pads}))


def batchnorm(b: _Builder, rng):
    x = _pick(b, rng)
    if x is None:
        return None
    c = b.shapes[x][1]
    f = lambda lo, hi: b.const(rng.uniform(lo, hi, c).astype(np.float32), "bn")  # noqa: E731
    inputs = [x, f(0.5, 1.5), f(-0.5, 0.5), f(-0.5, 0.5), f(0.3, 2.0)]
    return _push(b, b.try_node("BatchNormalization", inputs, {"epsilon": float(rng.choice([1e-5, 1e-3]))}))


def pool(b: _Builder, rng):
    x = _pick(b, rng)
    if x is None:
        return None
    spatial = len(b.shapes[x]) - 2
    op = str(rng.choice(["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"], p=[0.4, 0.3, 0.15, 0.15]))
    if op.startswith("Global"):
        return _push(b, b.try_node(op, [x]))
    kernel = [int(rng.choice([2, 3])) for _ in range(spatial)]
    stride = [int(rng.choice([1, 2])) for _ in range(spatial)]
    pads = [int(rng.integers(0, k)) for k in kernel] * 2
    attrs = {"kernel_shape": kernel, "strides": stride, "pads": pads}
    if op == "AveragePool":
        attrs["count_include_pad"] = int(rng.integers(0, 2))
    return _push(b, b.try_node(op, [x], attrs))


def activation(b: _Builder, rng):
    x = _pick(b, rng)
    if x is None:
        return None
    op = str(rng.choice(ACTIVATIONS))
    c = b.shapes[x][1]
    if op == "LeakyRelu":
        return _push(b, b.try_node(op, [x], {"alpha": float(rng.uniform(0.01, 0.3))}))
    if op == "Elu":
        return _push(b, b.try_node(op, [x], {"alpha": float(rng.uniform(0.5, 1.5))}))
    if op == "HardSigmoid":
        return _push(b, b.try_node(op, [x], {"alpha": 0.2, "beta": 0.5}))
    if op == "Clip":
        lo, hi = sorted(rng.uniform(-2, 2, 2).astype(np.float32))
        return _push(b, b.try_node(op, [x, b.const(np.float32(lo)), b.const(np.float32(hi + 0.1))]))
    if op == "PRelu":
        slope = rng.uniform(0.05, 0.5, [c] + [1] * (len(b.shapes[x]) - 2)).astype(np.float32)
        return _push(b, b.try_node(op, [x, b.const(slope, "slope")]))
    return _push(b, b.try_node(op, [x]))


def binary(b: _Builder, rng):
    x = _pick(b, rng)
    if x is None:
        return None
    op = str(rng.choice(["Add", "Add", "Sub", "Mul"]))
    same = [t for t in b.live if b.shapes[t] == b.shapes[x]]
    if rng.random() < 0.6:
        other = str(rng.choice(same))  # a skip (possibly x itself: a value used twice)
    else:
        rank = len(b.shapes[x])
        shape = [1, b.shapes[x][1]] + [1] * (rank - 2) if rng.random() < 0.7 else []
        other = b.const(rng.uniform(0.5, 1.5, shape).astype(np.float32))
    pair = [x, other] if rng.random() < 0.8 else [other, x]
    return _push(b, b.try_node(op, pair))


def div(b: _Builder, rng):
    x = _pick(b, rng)
    if x is None:
        return None
    return _push(b, b.try_node("Div", [x, b.const(np.float32(rng.choice([2.0, 3.0, 0.5, 7.0])))]))


def concat(b: _Builder, rng):
    x = _pick(b, rng)
    if x is None:
        return None
    shape = b.shapes[x]
    fits = [t for t in b.live if len(b.shapes[t]) == len(shape) and b.shapes[t][2:] == shape[2:]]
    others = [str(rng.choice(fits)) for _ in range(int(rng.integers(1, 3)))]
    return _push(b, b.try_node("Concat", [x] + others, {"axis": 1}))


def layout(b: _Builder, rng):
    """Reshape / Transpose / Squeeze / Unsqueeze, moving between 1-D and 2-D layouts."""
    squeezable = [t for t in b.live if len(b.shapes[t]) == 4 and b.shapes[t][2] == 1]
    x = str(rng.choice(squeezable)) if squeezable and rng.random() < 0.5 else _pick(b, rng)
    if x is None:
        return None
    shape = b.shapes[x]
    choice = rng.random()
    if len(shape) == 3 and choice < 0.5:
        return _push(b, b.try_node("Unsqueeze", [x, b.const(np.array([2], np.int64))]))
    if len(shape) == 4 and shape[2] == 1 and choice < 0.6:
        return _push(b, b.try_node("Squeeze", [x, b.const(np.array([2], np.int64))]))
    if choice < 0.8:
        rest = list(range(1, len(shape)))
        rng.shuffle(rest)
        return _push(b, b.try_node("Transpose", [x], {"perm": [0] + rest}))
    if len(shape) == 4:
        target = np.array([1, shape[1], shape[2] * shape[3]], np.int64)
    else:
        target = np.array([1, shape[1], 1, shape[2]], np.int64)
    return _push(b, b.try_node("Reshape", [x, b.const(target)]))


def round_fsq(b: _Builder, rng):
    """FSQ-style: Tanh -> Mul(levels) -> Round -> Div(levels). Returns (Round input, Round output)."""
    x = _pick(b, rng)
    if x is None:
        return None
    levels = np.float32(rng.choice([2.0, 3.0, 4.0]))
    t = b.try_node("Tanh", [x])
    scaled = t and b.try_node("Mul", [t[0], b.const(levels)])
    rounded = scaled and b.try_node("Round", [scaled[0]])
    out = rounded and b.try_node("Div", [rounded[0], b.const(levels)])
    if not out:
        return None
    b.live.append(out[0])
    return scaled[0], rounded[0]


def if_node(b: _Builder, rng):
    """If(mean > 0) whose branches read main-graph tensors (never passed as inputs)."""
    x = _pick(b, rng)
    if x is None:
        return None
    shape = b.shapes[x]
    same = [t for t in b.live if b.shapes[t] == shape]
    other = str(rng.choice(same))
    mean = b.fresh("mean")
    cond = b.fresh("cond")
    zero = b.const(np.float32(0.0))
    pre = [
        helper.make_node("ReduceMean", [b.live[0]], [mean], keepdims=0, name=b.fresh("ReduceMean")),
        helper.make_node("Greater", [mean, zero], [cond], name=b.fresh("Greater")),
    ]
    out_t, out_e = b.fresh("then_out"), b.fresh("else_out")
    then = helper.make_graph(
        [helper.make_node(str(rng.choice(["Relu", "Sigmoid", "Tanh"])), [x], [out_t])],
        "then",
        [],
        [helper.make_tensor_value_info(out_t, TensorProto.FLOAT, shape)],
    )
    other_op = (
        helper.make_node("Add", [x, other], [out_e]) if rng.random() < 0.5 else helper.make_node("Neg", [x], [out_e])
    )
    els = helper.make_graph([other_op], "else", [], [helper.make_tensor_value_info(out_e, TensorProto.FLOAT, shape)])
    return _push(b, b.try_node("If", [cond], extra_nodes=pre, then_branch=then, else_branch=els))


def misc(b: _Builder, rng):
    """Pad, Slice, Resize, Softmax, ReduceMean: the target's other ops."""
    x = _pick(b, rng)
    if x is None:
        return None
    shape = b.shapes[x]
    rank = len(shape)
    op = str(rng.choice(["Pad", "Slice", "Resize", "Softmax", "ReduceMean"]))
    if op == "Pad":
        pads = [0, 0] + [int(rng.integers(0, 3)) for _ in range(rank - 2)]
        ends = [0, 0] + [int(rng.integers(0, 3)) for _ in range(rank - 2)]
        return _push(b, b.try_node("Pad", [x, b.const(np.array(pads + ends, np.int64))], {"mode": "constant"}))
    if op == "Slice":
        axis = rank - 1
        if shape[axis] < 2:
            return None
        start = int(rng.integers(0, shape[axis] - 1))
        end = int(rng.integers(start + 1, shape[axis] + 1))
        inputs = [
            x,
            b.const(np.array([start], np.int64)),
            b.const(np.array([end], np.int64)),
            b.const(np.array([axis], np.int64)),
        ]
        return _push(b, b.try_node("Slice", inputs))
    if op == "Resize":
        scales = np.array([1.0, 1.0] + [float(rng.choice([1.0, 2.0])) for _ in range(rank - 2)], np.float32)
        return _push(b, b.try_node("Resize", [x, "", b.const(scales)], {"mode": "nearest"}))
    if op == "Softmax":
        return _push(b, b.try_node("Softmax", [x], {"axis": 1}))
    return _push(b, b.try_node("ReduceMean", [x], {"axes": list(range(2, rank)), "keepdims": 1}))


def gemm_head(b: _Builder, rng):
    """Flatten -> Gemm (an FC head); the model then ends in rank-2 ops."""
    x = _pick(b, rng)
    if x is None or math.prod(b.shapes[x][1:]) > 4096:
        return None
    flat = b.try_node("Flatten", [x], {"axis": 1})
    if not flat:
        return None
    features = b.shapes[flat[0]][1]
    units = int(rng.choice([1, 4, 10, 16]))
    out = b.try_node(
        "Gemm", [flat[0], b.weights([units, features]), b.const(np.zeros(units, np.float32))], {"transB": 1}
    )
    if out:
        b.heads.append(out[0])
    return out


def channels_last(b: _Builder, rng):
    """A ConvNeXt / Vocos block on a channels-last view: Transpose to [N, T, C] / [N, H, W, C],
    optionally LayerNorm over C, Linear (MatMul, optional bias), optionally GELU in one of the forms
    exporters write, optionally a second Linear back to C and a layer scale, Transpose back,
    optionally the residual."""
    x = _pick(b, rng)
    if x is None:
        return None
    shape = b.shapes[x]
    rank, c = len(shape), shape[1]
    to_last = [0] + list(range(2, rank)) + [1]
    to_first = [0, rank - 1] + list(range(1, rank - 1))
    t = b.try_node("Transpose", [x], {"perm": to_last})
    norm = rng.random()
    if t and norm < 0.4:
        scale, bias = b.const(rng.uniform(0.5, 1.5, c).astype(np.float32)), b.const(np.zeros(c, np.float32))
        t = b.try_node("LayerNormalization", [t[0], scale, bias], {"axis": -1, "epsilon": 1e-5})
    elif t and norm < 0.6:
        t = _layer_norm_written_out(b, rng, t[0], c)
    hidden = int(rng.choice([c, 2 * c, 3 * c, 4]))
    y = t and b.try_node("MatMul", [t[0], b.weights([c, hidden], 1.0 / math.sqrt(c))])
    if y and rng.random() < 0.7:
        y = b.try_node("Add", [y[0], b.const(rng.standard_normal(hidden).astype(np.float32) * 0.1)])
    if y and rng.random() < 0.6:
        y = _gelu(b, rng, y[0])
    if y and rng.random() < 0.6:
        y = b.try_node("MatMul", [y[0], b.weights([hidden, c], 1.0 / math.sqrt(hidden))])
        if y and rng.random() < 0.5:
            y = b.try_node("Mul", [y[0], b.const(rng.uniform(0.5, 1.5, c).astype(np.float32))])
    back = y and b.try_node("Transpose", [y[0]], {"perm": to_first})
    if back and b.shapes[back[0]] == shape and rng.random() < 0.5:
        back = b.try_node("Add", [x, back[0]])
    return _push(b, back)


def _layer_norm_written_out(b: _Builder, rng, x: str, c: int):
    """LayerNorm over the last axis as exporters write it below opset 17, with its affine part."""
    m = b.try_node("ReduceMean", [x], {"axes": [-1], "keepdims": 1})
    d = m and b.try_node("Sub", [x, m[0]])
    q = d and b.try_node("Pow", [d[0], b.const(np.float32(2.0))])
    v = q and b.try_node("ReduceMean", [q[0]], {"axes": [-1], "keepdims": 1})
    ve = v and b.try_node("Add", [v[0], b.const(np.float32(1e-5))])
    s = ve and b.try_node("Sqrt", [ve[0]])
    n = s and b.try_node("Div", [d[0], s[0]])
    g = n and b.try_node("Mul", [n[0], b.const(rng.uniform(0.5, 1.5, c).astype(np.float32))])
    return g and b.try_node("Add", [g[0], b.const(rng.standard_normal(c).astype(np.float32) * 0.1)])


def _gelu(b: _Builder, rng, x: str):
    """x * 0.5 * (1 + erf(x / sqrt 2)), scaled by Div or by Mul, halved at the end or first."""
    if rng.random() < 0.5:
        d = b.try_node("Div", [x, b.const(np.float32(math.sqrt(2)))])
    else:
        d = b.try_node("Mul", [x, b.const(np.float32(1 / math.sqrt(2)))])
    e = d and b.try_node("Erf", [d[0]])
    f = e and b.try_node("Add", [e[0], b.const(np.float32(1.0))])
    if not f:
        return None
    if rng.random() < 0.5:
        g = b.try_node("Mul", [x, f[0]])
        return g and b.try_node("Mul", [g[0], b.const(np.float32(0.5))])
    h = b.try_node("Mul", [x, b.const(np.float32(0.5))])
    return h and b.try_node("Mul", [h[0], f[0]])


def head_act(b: _Builder, rng):
    x = b.heads[-1]
    out = b.try_node(str(rng.choice(["Relu", "Sigmoid", "Softmax"])), [x])
    if out:
        b.heads.append(out[0])
    return out


BUILDERS = {
    "conv": conv,
    "conv_transpose": conv_transpose,
    "batchnorm": batchnorm,
    "pool": pool,
    "activation": activation,
    "binary": binary,
    "div": div,
    "concat": concat,
    "layout": layout,
    "round": round_fsq,
    "if": if_node,
    "misc": misc,
    "gemm_head": gemm_head,
    "head_act": head_act,
    "channels_last": channels_last,
}
OP_WEIGHTS = {
    "conv": 8,
    "conv_transpose": 1,
    "batchnorm": 3,
    "pool": 2,
    "activation": 4,
    "binary": 3,
    "div": 1,
    "concat": 1.5,
    "layout": 2,
    "round": 0.7,
    "if": 0.7,
    "misc": 1.5,
    "gemm_head": 0.5,
    "channels_last": 1,
}
