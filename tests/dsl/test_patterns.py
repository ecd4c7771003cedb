"""Named match blocks: `pattern NAME:` at file level, spliced into a rule's `match:` by `...NAME`
as if its lines were written there. Rewrites are checked against onnxruntime."""

import numpy as np
import pytest
from dsl_util import assert_same, model, ops, rewrite, rules

from rewriter.dsl import RuleSyntaxError

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'

NORM_LINES = """    m = ReduceMean(x) {axes: a1, keepdims: k1}
    d = Sub(x, m)
    q = Mul(d, d)
    v = ReduceMean(q) {axes: a2, keepdims: k2}
    ve = Add(v, e: const)
    s = Sqrt(ve)
    y = Div(d, s)
"""
CONDITIONS = """    where:
        k1 == 1 and k2 == 1 and a1 == [-1] and a2 == [-1] and is_single_value(e)
    rewrite:
        y = LayerNormalization(x, [1.0], [0.0]) {axis: -1, epsilon: scalar_value(e)}
"""
WRITTEN = (
    "rule last_axis_norm:\n    match:\n"
    + NORM_LINES.replace("    ", "        ", 1).replace("\n    ", "\n        ")
    + CONDITIONS
)
SPLICED = "pattern norm:\n" + NORM_LINES + "\nrule last_axis_norm:\n    match:\n        ...norm\n" + CONDITIONS


def _norm_model():
    return model(
        HEAD
        + """
    g (float[2,5,6] x) => (float[2,5,6] y) {
      m = ReduceMean<axes = [-1]>(x)
      d = Sub(x, m)
      q = Mul(d, d)
      v = ReduceMean<axes = [-1]>(q)
      ve = Add(v, e)
      s = Sqrt(ve)
      y = Div(d, s)
    }""",
        {"e": np.array(1e-5, np.float32)},
    )


def test_a_spliced_pattern_matches_as_written():
    m = _norm_model()
    written, events_w, _ = rewrite(m, rules(WRITTEN))
    spliced, events_s, _ = rewrite(m, rules(SPLICED))
    assert ops(written) == ops(spliced) == ["LayerNormalization"]
    assert [e.matched for e in events_w] == [e.matched for e in events_s]
    assert_same(m, spliced)


def test_lines_around_a_splice_and_op_variables_of_a_pattern():
    """The pattern in the middle of the rule's match lines (the anchor stays the rule's last line),
    with an op variable the pattern declares and the rule's rewrite uses."""
    text = """
pattern act_of_squeeze:
    op U in {Relu, Sigmoid}
    s = Squeeze(x, a: const)
    u = U(s)

rule squeeze_act_neg:
    match:
        ...act_of_squeeze
        y = Neg(u)
    where:
        value(a) == [2] and rank(x) == 4
    rewrite:
        y4 = Neg(U(x))
        y = Squeeze(y4, a)
"""
    for act in ("Relu", "Sigmoid"):
        m = model(
            HEAD
            + f"""
    g (float[1,3,1,5] x) => (float[1,3,5] y) {{
      s = Squeeze(x, axes)
      u = {act}(s)
      y = Neg(u)
    }}""",
            {"axes": np.array([2], np.int64)},
        )
        out, events, _ = rewrite(m, rules(text))
        assert [e.rule for e in events] == ["squeeze_act_neg"] and ops(out) == [act, "Neg", "Squeeze"]
        assert_same(m, out)


def test_each_rule_gets_its_own_copy():
    text = """
pattern relu_twice:
    a = Relu(x)
    y = Relu(a)

rule first:
    match:
        ...relu_twice
    rewrite:
        y = Relu(x)

rule second:
    match:
        ...relu_twice
    rewrite:
        y = Relu(x)
"""
    rs = rules(text)
    one, two = rs["first"].defn.match, rs["second"].defn.match
    assert [n.op for n in one] == [n.op for n in two] == ["Relu", "Relu"]
    assert all(a is not b for a, b in zip(one, two))


@pytest.mark.parametrize(
    "text, message, line",
    [
        ("rule r:\n    match:\n        ...nowhere\n    rewrite:\n        y = x\n", "unknown pattern 'nowhere'", 3),
        (
            "pattern p:\n    y = Relu(x)\npattern p:\n    y = Neg(x)\nrule r:\n    match:\n        ...p\n    rewrite:\n        y = x\n",
            "pattern 'p' defined twice (first at line 1)",
            3,
        ),
        (
            "pattern p:\n    op U in {Relu}\n    y = U(x)\nrule r:\n    match:\n        op U in {Neg}\n        ...p\n    rewrite:\n        y = x\n",
            "op variable 'U' of pattern 'p' is declared by the rule too",
            7,
        ),
        (
            "pattern p:\n    y = NotAnOp(x)\nrule r:\n    match:\n        ...p\n    rewrite:\n        y = x\n",
            "unknown ONNX op 'NotAnOp'",
            2,
        ),
    ],
    ids=["unknown", "twice", "op-variable-clash", "error-inside-the-pattern"],
)
def test_pattern_errors_are_located(text, message, line):
    with pytest.raises(RuleSyntaxError) as e:
        rules(text)
    first = str(e.value).splitlines()[0]
    assert message in first and f"test.rw:{line}:" in first, str(e.value)
