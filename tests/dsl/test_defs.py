"""File-level functions, `def NAME(params) = expr`: a call means its body with the arguments in place
of the parameters, wherever a rule reads an expression; nothing a rule binds is captured by a body,
and every misuse is a one-line located error. Rewrites are checked against onnxruntime."""

import numpy as np
import pytest
from dsl_util import assert_same, model, ops, rewrite, rules

from rewriter.dsl import RuleSyntaxError, trace_rule
from rewriter.dsl.ast import walk

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'

# transpose.rw's condition, once as a def and once written out in the rule
MOVABLE_DEF = """
let THROUGH = ["Relu", "Sigmoid", "Mul", "Add"]
def movable(t) = uses(t) == 1 or all([op in THROUGH for op in consumers(t)])

rule relu_after_transpose:
    match:
        t = Transpose(x) {perm: p}
        y = Relu(t)
    where:
        movable(t)
    rewrite:
        u = Relu(x)
        y = Transpose(u) {perm: p}
"""
MOVABLE_WRITTEN = MOVABLE_DEF.replace(
    "        movable(t)\n", "        uses(t) == 1 or all([op in THROUGH for op in consumers(t)])\n"
)

READERS = {
    "one reader": "y = Relu(t)",
    "elementwise readers": "y = Relu(t)\n      z = Sigmoid(t)",
    "a reader it cannot pass": "y = Relu(t)\n      z = Softmax(t)",
    "a graph output": "y = Relu(t)\n      z = Identity(t)",
}


def _transposed(readers: str):
    return model(
        HEAD
        + f"""
    g (float[1,3,5] x) => (float[1,5,3] y, float[1,5,3] z) {{
      t = Transpose<perm=[0,2,1]>(x)
      {readers}
      {"z = Neg(t)" if "z =" not in readers else ""}
    }}"""
    )


@pytest.mark.parametrize("readers", list(READERS.values()), ids=list(READERS))
def test_def_in_where_means_its_body(readers):
    m = _transposed(readers)
    out_def, events_def, _ = rewrite(m, rules(MOVABLE_DEF))
    out_written, events_written, _ = rewrite(m, rules(MOVABLE_WRITTEN))
    assert [e.rule for e in events_def] == [e.rule for e in events_written]
    assert ops(out_def) == ops(out_written)
    assert_same(m, out_def)


def test_def_decides_both_ways():
    moved = rewrite(_transposed(READERS["elementwise readers"]), rules(MOVABLE_DEF))[1]
    kept = rewrite(_transposed(READERS["a reader it cannot pass"]), rules(MOVABLE_DEF))[1]
    assert len(moved) == 1 and kept == []


SQUEEZE_MODEL = """
    g (float[1,4,1,6] x) => (float[1,4,6] y) {
      s = Squeeze(x, axes)
      y = Relu(s)
    }"""


def _squeezed():
    return model(HEAD + SQUEEZE_MODEL, {"axes": np.array([2], np.int64)})


def _squeeze_rule(defs: str, where: str, rewrite_lines: str = "y4 = Relu(x)\n        y = Squeeze(y4, a)") -> str:
    return f"""
{defs}
rule relu_after_squeeze:
    match:
        s = Squeeze(x, a: const)
        y = Relu(s)
    where:
        {where}
    rewrite:
        {rewrite_lines}
"""


@pytest.mark.parametrize(
    "defs, where, fires",
    [
        ("def squeezes_h(a, x) = value(a) == [2] and rank(x) == 4", "squeezes_h(a, x)", True),
        ("def squeezes_h(a, x) = value(a) == [2] and rank(x) == 4", "squeezes_h(a, x) and rank(x) == 3", False),
        # a def calling a def above it; arguments that are expressions, not names
        ("def at_most(v, n) = rank(v) <= n\ndef fits(v) = at_most(v, 2 + 2)", "fits(x)", True),
        ("def at_most(v, n) = rank(v) <= n\ndef fits(v) = at_most(v, 2 + 1)", "fits(x)", False),
        # parameters in the order the def lists them, whatever the names at the call
        ("def first_is_axis(k, v) = value(k) == [2] and rank(v) == 4", "first_is_axis(a, x)", True),
        ("def first_is_axis(k, v) = value(k) == [2] and rank(v) == 4", "not first_is_axis(a, x)", False),
        # a let read by the body
        ("let H = [2]\ndef squeezes(a) = value(a) == H", "squeezes(a)", True),
        # a let computed by a def (of constants: a let holds a constant)
        ("def pair(k) = [k, k]\nlet H = pair(2)[1:]\ndef squeezes(a) = value(a) == H", "squeezes(a)", True),
        ("def pair(k) = [k, k]\nlet H = pair(3)[1:]\ndef squeezes(a) = value(a) == H", "squeezes(a)", False),
    ],
)
def test_def_arguments_and_nesting(defs, where, fires):
    m = _squeezed()
    out, events, _ = rewrite(m, rules(_squeeze_rule(defs, where)))
    assert len(events) == int(fires)
    assert ops(out) == (["Relu", "Squeeze"] if fires else ["Squeeze", "Relu"])
    assert_same(m, out)


CAPTURE = """
def all_in(t, allowed) = all([U in allowed for U in consumers(t)])

rule unary_after_transpose:
    match:
        op U in {Relu, Tanh}
        t = Transpose(x) {perm: p}
        y = U(t)
    where:
        all_in(t, [U, "Sigmoid"])
    rewrite:
        u = U(x)
        y = Transpose(u) {perm: p}
"""


@pytest.mark.parametrize(
    "readers, fires", [("y = Relu(t)\n      z = Sigmoid(t)", True), ("y = Relu(t)\n      z = Softmax(t)", False)]
)
def test_a_body_captures_nothing_the_rule_binds(readers, fires):
    """The argument [U, "Sigmoid"] names the rule's op variable U, and the body's comprehension
    variable is also U: it is renamed, so the comprehension compares each consumer with the rule's
    U (Relu) and Sigmoid. Captured, `U in [U, "Sigmoid"]` would hold for every consumer."""
    rule = rules(CAPTURE)["unary_after_transpose"]
    texts = [e.text for e in walk(rule.defn.where[0])]  # messages read the tree as expanded
    assert texts[:2] == ['all_in(t, [U, "Sigmoid"])', '[U_1 in [U, "Sigmoid"] for U_1 in consumers(t)]']
    m = _transposed(readers)
    out, events, _ = rewrite(m, rules(CAPTURE))
    assert len(events) == int(fires)
    assert_same(m, out)


def test_def_in_rewrite_values_and_attributes():
    text = """
def same(v) = v
def perm_of(p) = [p[0], p[1], p[2]]

rule relu_after_transpose:
    match:
        t = Transpose(x) {perm: p}
        y = Relu(t)
    rewrite:
        u = Relu(same(x))
        y = Transpose(u) {perm: perm_of(p)}
"""
    m = _transposed(READERS["one reader"])
    out, events, _ = rewrite(m, rules(text))
    assert [e.rule for e in events] == ["relu_after_transpose"]
    assert sorted(ops(out)) == ["Neg", "Relu", "Transpose", "Transpose"]  # the Neg keeps the first
    assert_same(m, out)
    alias = """
def same(v) = v

rule relu_of_relu:
    match:
        a = Relu(x)
        y = Relu(a)
    rewrite:
        y = same(a)
"""
    m = model(HEAD + "g (float[2,3] x) => (float[2,3] y) { a = Relu(x)\n y = Relu(a) }")
    out, events, _ = rewrite(m, rules(alias))
    assert ops(out) == ["Relu"] and len(events) == 1
    assert_same(m, out)


def test_trace_shows_the_call_as_written():
    tracer = trace_rule("relu_after_transpose")
    rewrite(_transposed(READERS["a reader it cannot pass"]), rules(MOVABLE_DEF), tracer=tracer)
    assert any("where 'movable(t)' is false" in ln for ln in tracer.lines()), tracer.lines()


@pytest.mark.parametrize(
    "defs, where, message, line",
    [
        ("def f(v) = f(v)", "f(x)", "def 'f' calls itself", 2),
        ("def f(v) = g(v)\ndef g(v) = rank(v) == 4", "f(x)", "calls 'g', defined below it", 2),
        ("def f(v) = rank(x) == 4", "f(x)", "name 'x' is not one of its parameters or a let", 2),
        ("def f(v, n) = rank(v) == n", "f(x)", "'f' takes 2 argument(s) (v, n), got f(x)", 8),
        ("def f(v) = rank(v) == 4", "f(x, 4)", "'f' takes 1 argument(s) (v), got f(x, 4)", 8),
        ("def Relu(v) = rank(v) == 4", "true", "the name is an ONNX op", 2),
        ("def rank(v) = 4", "true", "the name is a builtin or helper", 2),
        ("def inverse_perm(v) = 4", "true", "the name is a builtin or helper", 2),
        ("def target(v) = 4", "true", "the name is reserved", 2),
        ("def f(v, v) = rank(v) == 4", "f(x, x)", "parameter 'v' is listed twice", 2),
        ("let K = 4\ndef f(K) = K", "true", "parameter 'K' has the name of a let", 3),
        ("let f = 4\ndef f(v) = v", "true", "'f' defined twice (first at line 2)", 3),
        ("def f(v) = all([v > 0 for v in shape(v)])", "f(x)", "comprehension variable 'v' hides a parameter", 2),
    ],
)
def test_def_errors_are_located(defs, where, message, line):
    with pytest.raises(RuleSyntaxError) as e:
        rules(_squeeze_rule(defs, where))
    text = str(e.value)
    assert message in text and f"test.rw:{line}:" in text.splitlines()[0], text
