"""Property: random conv DAGs through the whole pipeline (partition, tiling, plan writer) give
plans that load and equal the model.

The DAGs have skip connections (an earlier tensor added back), tensors consumed by several later
segments (host ops between them cut the hailo part), tensors that are both consumed later and plan
outputs, channel concats, strides, dilations, ConvTranspose, causal chomps, global norms (a host
stage inside a tiled segment) and odd lengths. Limits are drawn from the strict form (channel
blocks, max width) and from the resource model (row budget, per-HEF layers)."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import onnx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper, shape_inference

from rewriter.pipeline import RewriteOptions, rewrite_to_plan
from rewriter.target import Resources, TilingLimits, load_target

from .tiling_helpers import assert_plan_matches, check_tile_limits

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Dag:
    """Builds a [1, C, 1, W] ONNX model node by node; every tensor can be read by later nodes."""

    def __init__(self, channels: int, width: int, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.k = [], [], 0
        self.shape = {"x": (channels, width)}
        self.order = ["x"]

    def name(self, stem):
        self.k += 1
        return f"{stem}{self.k}"

    def const(self, arr, dtype=np.float32):
        n = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype), n))
        return n

    def node(self, op, ins, c, w, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        self.shape[out] = (c, w)
        self.order.append(out)
        return out

    def conv(self, x, cout, k, d, s, pads, depthwise=False):
        cin, w = self.shape[x]
        group = cin if depthwise else 1
        cout = cin if depthwise else cout
        wt = self.rng.standard_normal((cout, cin // group, 1, k)) / np.sqrt(cin // group * k)
        out_w = (w + sum(pads) - (k - 1) * d - 1) // s + 1
        return self.node(
            "Conv",
            [x, self.const(wt), self.const(self.rng.standard_normal(cout) * 0.1)],
            cout,
            out_w,
            kernel_shape=[1, k],
            dilations=[1, d],
            strides=[1, s],
            pads=[0, pads[0], 0, pads[1]],
            group=group,
        )

    def convT(self, x, cout, k, s, pads):
        cin, w = self.shape[x]
        wt = self.rng.standard_normal((cin, cout, 1, k)) / np.sqrt(cin * k)
        out_w = (w - 1) * s + k - sum(pads)
        return self.node(
            "ConvTranspose",
            [x, self.const(wt), self.const(self.rng.standard_normal(cout) * 0.1)],
            cout,
            out_w,
            kernel_shape=[1, k],
            strides=[1, s],
            pads=[0, pads[0], 0, pads[1]],
        )

    def act(self, x, op):
        c, w = self.shape[x]
        ins = [x] + ([self.const(self.rng.uniform(0.05, 0.3, (c, 1, 1)))] if op == "PRelu" else [])
        return self.node(op, ins, c, w)

    def binary(self, op, a, b):
        return self.node(op, [a, b], *self.shape[a])

    def concat(self, a, b):
        (ca, w), (cb, _) = self.shape[a], self.shape[b]
        return self.node("Concat", [a, b], ca + cb, w, axis=1)

    def chomp(self, x, n):
        c, w = self.shape[x]
        ins = [x, self.const([0], np.int64), self.const([w - n], np.int64), self.const([3], np.int64)]
        return self.node("Slice", ins, c, w - n)

    def global_norm(self, x):
        """x - mean(x) over C and W: a host stage inside the hailo segment."""
        mean = self.node("ReduceMean", [x], 1, 1, axes=[1, 2, 3], keepdims=1)
        self.shape[mean] = (1, 1)
        return self.node("Sub", [x, mean], *self.shape[x])

    def host_op(self, x):
        """An op the hailo8 target does not hold: cuts the hailo part into segments."""
        return self.node("Sin", [x], *self.shape[x])

    def model(self, outputs) -> onnx.ModelProto:
        vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, self.shape[n][0], 1, self.shape[n][1]])  # noqa: E731
        g = helper.make_graph(self.nodes, "dag", [vi("x")], [vi(o) for o in outputs], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        m = shape_inference.infer_shapes(m, strict_mode=True)
        onnx.checker.check_model(m, full_check=True)
        return m


@st.composite
def dags(draw):
    dag = Dag(draw(st.integers(1, 40)), draw(st.integers(41, 301)), draw(st.integers(0, 2**16)))
    pick = lambda: dag.order[draw(st.integers(0, len(dag.order) - 1))]  # noqa: E731 - any earlier tensor
    for _ in range(draw(st.integers(3, 12))):
        x = dag.order[-1] if draw(st.integers(0, 3)) else pick()
        c, w = dag.shape[x]
        if w < 8:
            continue
        what = draw(
            st.sampled_from(
                ["conv", "conv", "conv", "depthwise", "skip", "concat", "chomp", "convT", "norm", "host", "host"]
            )
        )
        if what in ("conv", "depthwise"):
            k = draw(st.integers(1, 5))
            d = draw(st.integers(1, 6)) if k > 1 else 1
            reach = (k - 1) * d
            pads = draw(st.sampled_from([(reach // 2, reach - reach // 2), (reach, 0), (0, 0)]))
            s = draw(st.integers(1, 2)) if what == "conv" else 1
            if (w + sum(pads) - reach - 1) // s + 1 < 4:
                continue
            y = dag.conv(x, draw(st.integers(1, 100)), k, d, s, pads, depthwise=what == "depthwise")
            dag.act(y, draw(st.sampled_from(["Relu", "PRelu", "Sigmoid"])))
        elif what == "skip":  # a same-shape conv of x added to x or to an earlier same-shape tensor
            d = draw(st.integers(1, 4))
            y = dag.act(dag.conv(x, c, 3, d, 1, (d, d)), "PRelu")
            same = [t for t in dag.order if dag.shape[t] == (c, w) and t != y]
            dag.binary(draw(st.sampled_from(["Add", "Mul"])), y, same[draw(st.integers(0, len(same) - 1))])
        elif what == "concat":
            same = [t for t in dag.order if dag.shape[t][1] == w]
            dag.concat(x, same[draw(st.integers(0, len(same) - 1))])
        elif what == "chomp":
            dag.chomp(x, draw(st.integers(1, 3)))
        elif what == "convT" and w < 160:
            dag.act(
                dag.convT(
                    x,
                    draw(st.integers(1, 40)),
                    draw(st.integers(2, 5)),
                    draw(st.integers(1, 3)),
                    (draw(st.integers(0, 1)), draw(st.integers(0, 1))),
                ),
                "Relu",
            )
        elif what == "norm":
            dag.global_norm(x)
        elif what == "host":
            dag.host_op(x)
    if len(dag.order) == 1:
        dag.conv("x", 8, 3, 1, 1, (1, 1))
    last = dag.order[-1]
    extra = [t for t in dag.order[1:-1] if draw(st.integers(0, 3)) == 0 and dag.shape[t][1] > 1]
    return dag.model([last] + extra)


limits_st = st.one_of(
    st.builds(lambda c, w: TilingLimits(channels=c, width=w), st.sampled_from([8, 16, 32]), st.integers(24, 120)),
    st.builds(
        lambda r, m, h: TilingLimits(resources=Resources(layer_row_values=r, min_tile_width=m, hef_layers=h)),
        st.integers(200, 3000),
        st.sampled_from([1, 16, 64]),
        st.integers(3, 40),
    ),
)


@SETTINGS
@given(model=dags(), limits=limits_st)
def test_random_dag_plans_load_and_match(tmp_path, model, limits):
    target = dataclasses.replace(load_target("hailo8"), tiling=limits, roundtrip_macs=0)
    src, out = tmp_path / "m.onnx", tmp_path / "plan"
    shutil.rmtree(out, ignore_errors=True)
    onnx.save(model, str(src))
    result, doc, _ = rewrite_to_plan(src, out, target, RewriteOptions())  # validated before the swap
    tiled = [s for s in doc["steps"] if "tiles" in s]
    event(f"tiled segments: {min(sum(r.tiled for r in result.tiling), 2)}")
    event(f"hailo segments: {min(sum(s['device'] == 'hailo' for s in result.segments), 3)}")
    event(f"masks: {any('mask' in b for s in tiled for b in s['tiles']['inputs'])}")
    event(f"channel blocks: {any(len(s['tiles']['outputs']) > len(s['outputs']) for s in tiled)}")
    event(f"several tiles: {any(s['tiles']['count'] > 1 for s in tiled)}")
    assert_plan_matches(model, out)
    check_tile_limits(out, limits)
