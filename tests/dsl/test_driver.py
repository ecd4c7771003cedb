"""Worklist driver: fixed point, bound, priorities, provenance, nested rewrite ops."""

import onnx_graphsurgeon as gs
import pytest
from dsl_util import assert_same, examples, model, ops, rewrite, rules

from rewriter.dsl import RuleError, apply_rules
from rewriter.ir.annotations import rule_of

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'
RELU = (
    HEAD
    + """
g (float[1,3,4] x) => (float[1,3,4] y) {
  y = Relu(x)
}"""
)


def test_always_firing_rule_reports_non_convergence():
    grow = """
rule grow:
    match:
        y = Relu(x)
    rewrite:
        y = Relu(Relu(x))
"""
    with pytest.raises(RuleError, match=r"did not converge after 7 rewrites; last rules applied: grow"):
        rewrite(model(RELU), rules(grow), max_rewrites=7)


def test_ping_pong_names_both_rules():
    text = """
rule to_sigmoid:
    match:
        y = Relu(x)
    rewrite:
        y = Sigmoid(x)

rule to_relu:
    match:
        y = Sigmoid(x)
    rewrite:
        y = Relu(x)
"""
    with pytest.raises(RuleError) as ei:
        rewrite(model(RELU), rules(text))
    msg = str(ei.value)
    assert "did not converge after 1010 rewrites" in msg  # default bound 10 * nodes + 1000
    assert "to_sigmoid" in msg and "to_relu" in msg


def test_priority_then_file_order():
    text = """
rule first_in_file:
    match:
        y = Relu(x)
    rewrite:
        y = Sigmoid(x)

rule urgent priority 5:
    match:
        y = Relu(x)
    rewrite:
        y = Tanh(x)

rule also_zero:
    match:
        y = Relu(x)
    rewrite:
        y = Abs(x)
"""
    rs = rules(text)
    assert [r.priority for r in rs] == [0, 5, 0]
    assert [r.name for r in rs.by_priority()] == ["urgent", "first_in_file", "also_zero"]
    out, events, _ = rewrite(model(RELU), rs)
    assert [e.rule for e in events] == ["urgent"] and ops(out) == ["Tanh"]
    out, events, _ = rewrite(model(RELU), rules(text.replace("priority 5", "priority -1")))
    assert [e.rule for e in events] == ["first_in_file"]


def test_nested_ops_in_rewrite_are_tagged_and_shaped():
    text = """
rule relu_to_double_abs_max:
    match:
        y = Relu(x)
    rewrite:
        y = Max(Neg(Neg(x)), 0.0)
"""
    m = model(RELU)
    g = gs.import_onnx(m)
    events = apply_rules(g, rules(text))
    assert len(events) == 1 and len(events[0].created) == 3
    assert sorted(n.op for n in g.nodes) == ["Max", "Neg", "Neg"]
    assert all(rule_of(n) == "relu_to_double_abs_max" for n in g.nodes)
    for n in g.nodes:
        assert list(n.outputs[0].shape) == [1, 3, 4]
    out, _, _ = rewrite(m, rules(text))
    assert_same(m, out)


def test_rewrite_attribute_expressions_and_spread_override():
    text = """
rule conv1d_as_conv2d:
    match:
        y = Conv(x, w: const) {kernel_shape: k, pads: p, ...attrs}
    where:
        rank(x) == 3
    rewrite:
        x4 = Unsqueeze(x, [2])
        w4 = Unsqueeze(w, [2])
        y4 = Conv(x4, w4) {...attrs, kernel_shape: [1, k[0]], pads: [0, p[0], 0, p[1]], strides: [1] + attrs["strides"], dilations: [1, 1]}
        y = Squeeze(y4, [2])
"""
    import numpy as np

    w = {"w": np.random.default_rng(0).standard_normal([4, 3, 3]).astype(np.float32)}
    m = model(
        HEAD
        + """
    g (float[1,3,10] x) => (float[1,4,5] y) {
      y = Conv<pads=[1,1], strides=[2]>(x, w)
    }""",
        w,
    )
    out, events, g = rewrite(m, rules(text))
    assert len(events) == 1 and ops(out) == ["Unsqueeze", "Unsqueeze", "Conv", "Squeeze"]
    conv = [n for n in g.nodes if n.op == "Conv"][0]
    assert conv.attrs["kernel_shape"] == [1, 3] and conv.attrs["strides"] == [1, 2]
    assert list(conv.outputs[0].shape) == [1, 4, 1, 5]
    assert_same(m, out)


def test_only_changed_neighbourhood_is_revisited():
    # a long chain with one rewrite site: the driver must stop quickly and not rewrite twice
    body = "\n".join(f"  t{i + 1} = Sigmoid(t{i})" for i in range(200))
    m = model(
        HEAD
        + f"""
    g (float[1,3] t0) => (float[1,3] y) {{
{body}
      a = Relu(t200)
      y = Relu(a)
    }}"""
    )
    out, events, _ = rewrite(m, examples())
    assert len(events) == 1 and ops(out).count("Relu") == 1


def test_no_rules_no_change():
    m = model(RELU)
    g = gs.import_onnx(m)
    assert apply_rules(g, rules("")) == []
    assert [n.op for n in g.nodes] == ["Relu"]
