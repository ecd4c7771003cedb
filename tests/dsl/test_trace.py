"""trace_rule: human-readable reasons why a rule did not match."""

import numpy as np
from dsl_util import examples, model, rewrite, weights

from rewriter.dsl import trace_rule

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'


def _trace(text, inits=None, rule="fuse_conv_bn"):
    tracer = trace_rule(rule)
    rewrite(model(HEAD + text, inits), examples(), tracer=tracer)
    return tracer.lines()


def test_uses_reason():
    lines = _trace(
        """
    g (float[1,3,6,6] x) => (float[1,4,4,4] y, float[1,4,4,4] z) {
      c = Conv(x, w)
      y = BatchNormalization(c, s, beta, mean, var)
      z = Sigmoid(c)
    }""",
        weights(w=[4, 3, 3, 3], s=[4], beta=[4], mean=[4], var=[4]),
    )
    assert any("where 'uses(c) == 1' is false (uses(c) = 2)" in ln for ln in lines), lines
    # only candidates (nodes with the rule's anchor op) are traced, not every node
    assert not any("Sigmoid" in ln for ln in lines), lines


def test_not_constant_reason():
    lines = _trace(
        """
    g (float[1,3,6,6] x, float[4,3,3,3] w) => (float[1,4,4,4] y) {
      c = Conv(x, w)
      y = BatchNormalization(c, s, beta, mean, var)
    }""",
        weights(s=[4], beta=[4], mean=[4], var=[4]),
    )
    assert any("(Conv): input 1 'w' is not a constant" in ln for ln in lines), lines


def test_attribute_reason_and_match_line():
    tracer = trace_rule("leaky_zero_is_relu")
    rewrite(
        model(
            HEAD
            + """
    g (float[1,3] x) => (float[1,3] y, float[1,3] z) {
      y = LeakyRelu<alpha=0.5>(x)
      z = LeakyRelu<alpha=0.0>(x)
    }"""
        ),
        examples(),
        tracer=tracer,
    )
    text = "\n".join(tracer.lines())
    assert "where 'a == 0.0' is false (a = 0.5)" in text
    assert "leaky_zero_is_relu matches" in text and "applied leaky_zero_is_relu" in text


def test_literal_attribute_reason():
    from dsl_util import rules

    rs = rules("""
rule g1:
    match:
        y = Conv(x, w: const) {group: 1}
    rewrite:
        y = Conv(x, w) {group: 1, kernel_shape: [1, 1]}
""")
    tracer = trace_rule("g1")
    m = model(
        HEAD
        + """
    g (float[1,4,3,3] x) => (float[1,4,3,3] y) {
      y = Conv<group=2>(x, w)
    }""",
        {"w": np.ones([4, 2, 1, 1], np.float32)},
    )
    rewrite(m, rs, tracer=tracer)
    assert any("attribute group=2 != 1" in ln for ln in tracer.lines()), tracer.lines()


def test_float_attributes_print_short():
    """ONNX stores float attributes as float32: the trace prints alpha=0.1, not 0.10000000149011612."""
    from dsl_util import rules

    rs = rules("""
rule leaky_02:
    match:
        y = LeakyRelu(x) {alpha: 0.2}
    rewrite:
        y = Relu(x)
""")
    tracer = trace_rule("leaky_02")
    rewrite(
        model(
            HEAD
            + """
    g (float[1,3] x) => (float[1,3] y) {
      y = LeakyRelu<alpha=0.1>(x)
    }"""
        ),
        rs,
        tracer=tracer,
    )
    text = "\n".join(tracer.lines())
    assert "attribute alpha=0.1 != 0.2" in text, text
    assert "0.10000000149011612" not in text
