"""The three reference rules from data/examples.rw, end to end against onnxruntime."""

import onnx_graphsurgeon as gs
import pytest
from dsl_util import assert_same, examples, model, ops, rewrite, weights

from rewriter.ir.annotations import rule_of

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'


def test_rule_metadata():
    rs = examples()
    assert rs.names() == ["relu_of_relu", "leaky_zero_is_relu", "fuse_conv_bn"]
    assert rs["relu_of_relu"].summary == "Relu(Relu(x)) -> Relu(x)"
    assert rs["relu_of_relu"].line == 3 and rs["relu_of_relu"].file.endswith("examples.rw")
    assert all(r.priority == 0 for r in rs)


def test_relu_chain_collapses_to_one():
    m = model(
        HEAD
        + """
    g (float[1,3,4,4] x) => (float[1,3,4,4] y) {
      a = Relu(x)
      b = Relu(a)
      c = Relu(b)
      y = Relu(c)
    }"""
    )
    out, events, g = rewrite(m, examples())
    assert ops(out) == ["Relu"]
    assert len(events) == 3 and {e.rule for e in events} == {"relu_of_relu"}
    assert out.graph.output[0].name == "y"
    assert rule_of(g.nodes[0]) == "relu_of_relu"
    assert_same(m, out)


@pytest.mark.parametrize("alpha,fires", [(0.0, True), (0.1, False)])
def test_leaky_zero(alpha, fires):
    m = model(
        HEAD
        + f"""
    g (float[1,3,4,4] x) => (float[1,3,4,4] y) {{
      y = LeakyRelu<alpha={alpha}>(x)
    }}"""
    )
    out, events, _ = rewrite(m, examples())
    assert ops(out) == (["Relu"] if fires else ["LeakyRelu"])
    assert len(events) == int(fires)
    assert_same(m, out)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("attrs", ["", "<pads=[1,1,1,1], strides=[2,2]>", "<group=2>"])
def test_fuse_conv_bn(with_bias, attrs):
    wshape = [4, 1, 3, 3] if "group" in attrs else [4, 2, 3, 3]
    bias = ", bias" if with_bias else ""
    w = weights(1, w=wshape, bias=[4], s=[4], beta=[4], mean=[4], var=[4])
    if not with_bias:
        del w["bias"]
    m = model(
        HEAD
        + f"""
    g (float[1,2,9,9] x) => (float[1,4,?,?] y) {{
      c = Conv{attrs}(x, w{bias})
      y = BatchNormalization<epsilon=0.001>(c, s, beta, mean, var)
    }}""",
        w,
    )
    out, events, g = rewrite(m, examples())
    assert ops(out) == ["Conv"] and [e.rule for e in events] == ["fuse_conv_bn"]
    conv = g.nodes[0]
    assert len(conv.inputs) == 3  # bias created even when the conv had none
    for k in ("pads", "strides", "group"):
        if k in attrs:
            assert k in conv.attrs
    assert_same(m, out)


def test_fuse_conv_bn_rank3():
    w = weights(2, w=[5, 3, 3], bias=[5], s=[5], beta=[5], mean=[5], var=[5])
    m = model(
        HEAD
        + """
    g (float[1,3,10] x) => (float[1,5,?] y) {
      c = Conv<dilations=[2]>(x, w, bias)
      y = BatchNormalization(c, s, beta, mean, var)
    }""",
        w,
    )
    out, events, _ = rewrite(m, examples())
    assert ops(out) == ["Conv"]
    assert_same(m, out)


def test_graph_is_edited_in_place_and_toposorted():
    m = model(
        HEAD
        + """
    g (float[1,3,4,4] x) => (float[1,3,4,4] y) {
      a = Relu(x)
      b = Relu(a)
      y = Sigmoid(b)
    }"""
    )
    g = gs.import_onnx(m)
    from rewriter.dsl import apply_rules

    apply_rules(g, examples())
    assert [n.op for n in g.nodes] == ["Relu", "Sigmoid"]
    assert g.nodes[1].inputs[0] is g.nodes[0].outputs[0]
