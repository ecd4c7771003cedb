"""Build small NCHW (H=1) conv models, tile them, run them through the real runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper, shape_inference

from rewriter.plan.document import plan_document
from rewriter.plan.steps import PlannedStep
from rewriter.plan.writer import write_plan
from rewriter.target import TilingLimits
from rewriter.tiling import tile_steps
from runtime import Plan


class Chain:
    """Appends layers to a [1, C, 1, W] model; every layer consumes the current tensor."""

    def __init__(self, channels: int, width: int, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.cur, self.c, self.w, self.k = "x", channels, width, 0
        self.inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 1, width])]
        self.saved = {}

    def _name(self, stem):
        self.k += 1
        return f"{stem}{self.k}"

    def const(self, stem, arr):
        name = self._name(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    def conv(self, cout, k=3, d=1, s=1, pads=(1, 1), depthwise=False, bias=True):
        cin = self.c
        group = cin if depthwise else 1
        if depthwise:
            cout = cin
        w = self.rng.standard_normal((cout, cin // group, 1, k)) / np.sqrt(cin // group * k)
        ins = [self.cur, self.const("w", w)]
        if bias:
            ins.append(self.const("b", self.rng.standard_normal(cout) * 0.1))
        out = self._name("conv")
        self.nodes.append(
            helper.make_node(
                "Conv",
                ins,
                [out],
                name=out,
                kernel_shape=[1, k],
                dilations=[1, d],
                strides=[1, s],
                pads=[0, pads[0], 0, pads[1]],
                group=group,
            )
        )
        self.w = (self.w + pads[0] + pads[1] - (k - 1) * d - 1) // s + 1
        self.cur, self.c = out, cout
        return self

    def convT(self, cout, k=4, s=2, pads=(0, 0), out_pad=0):
        w = self.rng.standard_normal((self.c, cout, 1, k)) / np.sqrt(self.c * k)
        out = self._name("convT")
        self.nodes.append(
            helper.make_node(
                "ConvTranspose",
                [self.cur, self.const("w", w), self.const("b", self.rng.standard_normal(cout) * 0.1)],
                [out],
                name=out,
                kernel_shape=[1, k],
                strides=[1, s],
                pads=[0, pads[0], 0, pads[1]],
                output_padding=[0, out_pad],
            )
        )
        self.w = (self.w - 1) * s + k + out_pad - pads[0] - pads[1]
        self.cur, self.c = out, cout
        return self

    def act(self, op="Relu"):
        out = self._name(op.lower())
        ins = [self.cur]
        if op == "PRelu":
            ins.append(self.const("slope", self.rng.uniform(0.05, 0.3, (self.c, 1, 1))))
        self.nodes.append(helper.make_node(op, ins, [out], name=out))
        self.cur = out
        return self

    def affine(self):
        """Per-channel scale and shift (a folded norm)."""
        m = self._name("mul")
        self.nodes.append(
            helper.make_node(
                "Mul", [self.cur, self.const("g", self.rng.uniform(0.5, 1.5, (1, self.c, 1, 1)))], [m], name=m
            )
        )
        a = self._name("add")
        self.nodes.append(
            helper.make_node("Add", [m, self.const("beta", self.rng.standard_normal((1, self.c, 1, 1)))], [a], name=a)
        )
        self.cur = a
        return self

    def mark(self, key):
        self.saved[key] = (self.cur, self.c, self.w)
        return self

    def add_from(self, key):
        other, c, w = self.saved[key]
        assert (c, w) == (self.c, self.w), "residual needs equal shapes"
        out = self._name("res")
        self.nodes.append(helper.make_node("Add", [self.cur, other], [out], name=out))
        self.cur = out
        return self

    def chomp(self, n):
        """Causal chomp: drop the last n columns (Slice on W)."""
        out = self._name("chomp")
        self.nodes.append(
            helper.make_node(
                "Slice",
                [self.cur, self.const_i("st", [0]), self.const_i("en", [self.w - n]), self.const_i("ax", [3])],
                [out],
                name=out,
            )
        )
        self.w -= n
        self.cur = out
        return self

    def const_i(self, stem, arr):
        name = self._name(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(arr, np.int64), name))
        return name

    def model(self) -> onnx.ModelProto:
        out = helper.make_tensor_value_info(self.cur, TensorProto.FLOAT, [1, self.c, 1, self.w])
        g = helper.make_graph(self.nodes, "chain", self.inputs, [out], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        m = shape_inference.infer_shapes(m, strict_mode=True)
        onnx.checker.check_model(m, full_check=True)
        return m


def write_tiled_plan(model: onnx.ModelProto, limits: TilingLimits, out: Path):
    """Source model -> one hailo step -> tiled plan folder (validated by the writer). Returns (steps, reports)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / (out.name + "_model.onnx")
    onnx.save(model, str(src))
    step = PlannedStep(
        "hailo_0",
        "hailo",
        [i.name for i in model.graph.input],
        [o.name for o in model.graph.output],
        model,
        {"nodes": len(model.graph.node)},
    )
    steps, reports = tile_steps([step], limits)
    doc = plan_document("hailo8", src, model, steps)
    write_plan(out, doc, steps)
    return steps, reports


def reference(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def random_feeds(model: onnx.ModelProto, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    return {
        i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim]).astype(np.float32)
        for i in model.graph.input
        if i.name not in inits
    }


def assert_plan_matches(model: onnx.ModelProto, out: Path, seed=0):
    feeds = random_feeds(model, seed)
    want = reference(model, feeds)
    with Plan.load(out, backend="onnxruntime") as plan:
        got = plan.run(feeds)
    for o, w in zip(model.graph.output, want):
        scale = float(np.max(np.abs(w))) or 1.0
        np.testing.assert_allclose(got[o.name], w, rtol=1e-5, atol=1e-5 * scale, err_msg=o.name)


def check_tile_limits(out: Path, limits: TilingLimits, ops_allowed: set[str] | None = None) -> int:
    """Every hailo step's model: checker passes, rank-4 tensors static but for the batch of a tiled
    step, convs <= `channels` in and out, tensors <= `width` wide, and (without a strict width)
    every layer's tensors within the row budget. One model file per hailo step (one HEF per
    device call). Returns the number of hailo steps."""
    doc = json.loads((out / "plan.json").read_text())
    hailo = [s for s in doc["steps"] if s["device"] == "hailo"]
    assert len({s["model"] for s in hailo}) == len(hailo), "a device call per distinct HEF"
    budget = None if limits.width else limits.resources.layer_row_values
    for step in hailo:
        m = onnx.load(str(out / step["model"]))
        onnx.checker.check_model(m, full_check=True)
        m = shape_inference.infer_shapes(m, strict_mode=True)
        inits = {t.name for t in m.graph.initializer}
        shapes = {}
        for v in list(m.graph.input) + list(m.graph.output) + list(m.graph.value_info):
            dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim]
            static = dims[1:] if "tiles" in step else dims
            assert len(dims) == 4 and all(isinstance(d, int) and d > 0 for d in static), (step["name"], v.name, dims)
            if limits.width:
                assert dims[3] <= limits.width, (step["name"], v.name, dims)
            shapes[v.name] = dims
        for node in m.graph.node:
            if ops_allowed is not None:
                assert node.op_type in ops_allowed, (step["name"], node.op_type)
            if node.op_type in ("Conv", "ConvTranspose") and limits.channels:
                cin, cout = shapes[node.input[0]][1], shapes[node.output[0]][1]
                assert max(cin, cout) <= limits.channels, (step["name"], node.name, cin, cout)
            for x in list(node.input) + list(node.output):
                assert x == "" or x in inits or x in shapes, (step["name"], x)
                if budget and "tiles" in step and x in shapes:
                    assert shapes[x][1] * shapes[x][3] <= budget, (step["name"], node.name, x, shapes[x])
    return len(hailo)
