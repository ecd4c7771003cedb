"""Rewrites never drop values still used elsewhere, never rename graph outputs, never mutate
shared initializers."""

import numpy as np
import onnx_graphsurgeon as gs
from dsl_util import assert_same, examples, model, ops, rewrite, rules, weights

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'

NO_USES_CHECK = """
rule fuse_conv_bn_unchecked:
    match:
        c = Conv(x, w: const, b: const?) {...attrs}
        y = BatchNormalization(c, s: const, beta: const, m: const, v: const) {epsilon: eps}
    rewrite:
        y = Conv(x, bn_fold_weight(w, s, v, eps), bn_fold_bias(b, s, beta, m, v, eps)) {...attrs}
"""


def _shared_model():
    w = weights(3, w=[4, 3, 3, 3], s=[4], beta=[4], mean=[4], var=[4], s2=[4], beta2=[4], mean2=[4], var2=[4])
    return model(
        HEAD
        + """
    g (float[1,3,6,6] x) => (float[1,4,4,4] y1, float[1,4,4,4] y2) {
      c1 = Conv(x, w)
      y1 = BatchNormalization(c1, s, beta, mean, var)
      r = Relu(x)
      c2 = Conv(r, w)
      y2 = BatchNormalization(c2, s2, beta2, mean2, var2)
    }""",
        w,
    ), w["w"]


def test_shared_weights_are_not_mutated():
    m, w = _shared_model()
    g = gs.import_onnx(m)
    shared = [t for t in g.tensors().values() if t.name == "w"][0]
    before = shared.values.copy()
    from rewriter.dsl import apply_rules

    events = apply_rules(g, examples())
    assert len(events) == 2
    np.testing.assert_array_equal(shared.values, before)
    np.testing.assert_array_equal(before, w)
    out, _, _ = rewrite(m, examples())
    inits = [i.name for i in out.graph.initializer]
    assert len(inits) == len(set(inits)), "initializer names must be unique"
    assert ops(out).count("Conv") == 2 and "BatchNormalization" not in ops(out)
    assert_same(m, out)


def _conv_used_twice():
    w = weights(4, w=[4, 3, 3, 3], s=[4], beta=[4], mean=[4], var=[4])
    return model(
        HEAD
        + """
    g (float[1,3,6,6] x) => (float[1,4,4,4] y, float[1,4,4,4] z) {
      c = Conv(x, w)
      y = BatchNormalization(c, s, beta, mean, var)
      z = Sigmoid(c)
    }""",
        w,
    )


def test_uses_check_blocks_fusion_of_shared_value():
    m = _conv_used_twice()
    out, events, _ = rewrite(m, examples())
    assert events == []
    assert sorted(ops(out)) == ["BatchNormalization", "Conv", "Sigmoid"]


def test_rule_without_uses_check_keeps_producer_alive():
    m = _conv_used_twice()
    out, events, _ = rewrite(m, rules(NO_USES_CHECK))
    assert len(events) == 1
    assert sorted(ops(out)) == ["Conv", "Conv", "Sigmoid"]  # original conv still feeds Sigmoid
    assert_same(m, out)


def test_graph_output_in_middle_of_chain():
    m = model(
        HEAD
        + """
    g (float[1,3,4,4] x) => (float[1,3,4,4] a, float[1,3,4,4] y) {
      a = Relu(x)
      y = Relu(a)
    }"""
    )
    out, events, _ = rewrite(m, examples())
    assert len(events) == 1
    assert [o.name for o in out.graph.output] == ["a", "y"]
    assert ops(out) == ["Relu", "Relu"]  # `a` is a graph output, so its producer stays
    assert all(n.input[0] == "x" for n in out.graph.node)
    assert_same(m, out)


def test_replaced_graph_output_keeps_name_and_shape():
    m = model(
        HEAD
        + """
    g (float[1,3,4,4] x) => (float[1,3,4,4] y) {
      a = Relu(x)
      y = Relu(a)
    }"""
    )
    g = gs.import_onnx(m)
    y = g.outputs[0]
    from rewriter.dsl import apply_rules

    apply_rules(g, examples())
    assert g.outputs[0] is y and y.name == "y" and list(y.shape) == [1, 3, 4, 4]
    assert [i.name for i in g.inputs] == ["x"]


def test_new_names_do_not_clash_with_existing():
    # an existing tensor already uses the name the rule would pick for its constant
    w = weights(5, w=[4, 3, 1, 1], s=[4], beta=[4], mean=[4], var=[4])
    w["fuse_conv_bn_const"] = np.ones([1], np.float32)
    m = model(
        HEAD
        + """
    g (float[1,3,4,4] x) => (float[1,4,4,4] y, float[1] k) {
      c = Conv(x, w)
      y = BatchNormalization(c, s, beta, mean, var)
      k = Identity(fuse_conv_bn_const)
    }""",
        w,
    )
    out, events, _ = rewrite(m, examples())
    names = [i.name for i in out.graph.initializer]
    assert len(names) == len(set(names))
    assert_same(m, out)
