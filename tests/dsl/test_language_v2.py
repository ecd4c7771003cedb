"""Rule language v2: op variables and op sets, `y = x`, host pins, target facts, file constants,
variadic inputs, comprehensions in rewrites. Each rewrite is checked against onnxruntime."""

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from dsl_util import assert_same, model, ops, rewrite, rules, weights

from rewriter.dsl import RuleSyntaxError, apply_rules
from rewriter.ir.annotations import host_reason, origin_of

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'

UNARY_AFTER_SQUEEZE = """
ops UNARY = {Relu, Sigmoid, Tanh}
ops MORE = {...UNARY, LeakyRelu}

rule unary_after_squeeze:
    match:
        op U in MORE
        s = Squeeze(x, a: const)
        y = U(s) {...attrs}
    where:
        value(a) == [2] and rank(x) == 4
    rewrite:
        y4 = U(x) {...attrs}
        y = Squeeze(y4, a)
"""


@pytest.mark.parametrize("op", ["Relu", "Sigmoid", "Tanh", "LeakyRelu<alpha=0.3>"])
def test_one_rule_for_an_op_set(op):
    m = model(
        HEAD
        + f"""
    g (float[1,3,1,5] x) => (float[1,3,5] y) {{
      s = Squeeze(x, axes)
      y = {op}(s)
    }}""",
        {"axes": np.array([2], np.int64)},
    )
    out, events, g = rewrite(m, rules(UNARY_AFTER_SQUEEZE))
    name = op.split("<")[0]
    assert [e.rule for e in events] == ["unary_after_squeeze"] and ops(out) == [name, "Squeeze"]
    if "alpha" in op:  # the attributes travel with the op
        assert next(n for n in g.nodes if n.op == "LeakyRelu").attrs["alpha"] == pytest.approx(0.3)
    assert_same(m, out)


def test_op_outside_the_set_does_not_match():
    m = model(
        HEAD
        + """
    g (float[1,3,1,5] x) => (float[1,3,5] y) {
      s = Squeeze(x, axes)
      y = Exp(s)
    }""",
        {"axes": np.array([2], np.int64)},
    )
    _, events, _ = rewrite(m, rules(UNARY_AFTER_SQUEEZE))
    assert events == []


def test_op_variable_binds_one_op_for_every_node():
    text = """
rule same_op_twice:
    match:
        op U in {Relu, Sigmoid}
        a = U(x)
        y = U(a)
    where:
        U == "Relu"
    rewrite:
        y = U(x)
"""
    m = model(
        HEAD
        + """
    g (float[1,4] x) => (float[1,4] y, float[1,4] z) {
      a = Relu(x)
      y = Sigmoid(a)
      b = Relu(x)
      z = Relu(b)
    }"""
    )
    out, events, _ = rewrite(m, rules(text))
    assert len(events) == 1 and sorted(ops(out)) == ["Relu", "Relu", "Sigmoid"]
    assert_same(m, out)


def _identity_rule(op="Identity"):
    return rules(f"""
rule drop:
    match:
        y = {op}(x)
    rewrite:
        y = x
""")


def test_value_replacement_moves_consumers():
    m = model(
        HEAD
        + """
    g (float[1,4] x) => (float[1,4] y) {
      r = Relu(x)
      i = Identity(r)
      y = Sigmoid(i)
    }"""
    )
    out, events, _ = rewrite(m, _identity_rule())
    assert ops(out) == ["Relu", "Sigmoid"] and len(events) == 1
    assert_same(m, out)


def test_value_replacement_keeps_graph_output_name():
    m = model(
        HEAD
        + """
    g (float[1,4] x) => (float[1,4] y, float[1,4] z) {
      r = Relu(x)
      y = Identity(r)
      z = Sigmoid(r)
    }"""
    )
    out, _, _ = rewrite(m, _identity_rule())
    assert ops(out) == ["Relu", "Sigmoid"]
    assert [o.name for o in out.graph.output] == ["y", "z"]
    assert out.graph.node[0].output[0] == "y"  # the producer now writes the output's name
    assert_same(m, out)


def test_value_replacement_from_graph_input_to_output_keeps_the_node():
    m = model(
        HEAD
        + """
    g (float[1,4] x) => (float[1,4] y) {
      y = Identity(x)
    }"""
    )
    out, events, _ = rewrite(m, _identity_rule())
    assert events == [] and ops(out) == ["Identity"]


def test_value_replacement_checks_shape():
    text = """
rule mul_one_is_x:
    match:
        y = Mul(x, c: const)
    where:
        value(c) == 1.0
    rewrite:
        y = x
"""
    m = model(
        HEAD
        + """
    g (float[3,4] x) => (float[2,3,4] y) {
      y = Mul(x, one)
    }""",
        {"one": np.ones([2, 3, 4], np.float32)},
    )
    from rewriter.dsl import RuleError

    with pytest.raises(
        RuleError,
        match=r"rule mul_one_is_x .* at node .*changes the shape of 'y' "
        r"from \[2, 3, 4\] to \[3, 4\]",
    ):
        rewrite(m, rules(text))


def test_host_pin_marks_matched_nodes_and_keeps_them():
    text = """
let WHY = "rounding runs on the host"

rule round_on_host:
    match:
        y = Round(x)
    where:
        on_host(y) == None
    rewrite:
        host: WHY

rule scale_before_round:
    match:
        z = Mul(x, k: const)
        r = Round(z)
    where:
        on_host(r) == WHY and on_host(z) == None
    rewrite:
        host z: WHY
"""
    m = model(
        HEAD
        + """
    g (float[1,4] x) => (float[1,4] y) {
      z = Mul(x, k)
      r = Round(z)
      y = Relu(r)
    }""",
        {"k": np.full([1], 3.0, np.float32)},
    )
    g = gs.import_onnx(m)
    events = apply_rules(g, rules(text))
    assert [e.rule for e in events] == ["round_on_host", "scale_before_round"]
    reasons = {n.op: host_reason(n) for n in g.nodes}
    assert reasons == {"Mul": "rounding runs on the host", "Round": "rounding runs on the host", "Relu": None}
    assert apply_rules(g, rules(text)) == []  # pins are not re-applied


def test_target_facts_in_where():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class FakeOp:
        groups: str

    @dataclass(frozen=True)
    class Facts:
        ops: dict
        width: int

    text = """
rule only_if_the_target_has_it:
    match:
        y = Relu(x)
    where:
        "Relu" in target.ops and target.ops.Relu.groups == "any" and shape(x)[1] <= target.width
    rewrite:
        y = Abs(x)
"""
    m = model(
        HEAD
        + """
    g (float[1,4] x) => (float[1,4] y) {
      y = Relu(x)
    }"""
    )
    for facts, fires in (
        (Facts({"Relu": FakeOp("any")}, 8), True),
        (Facts({"Relu": FakeOp("any")}, 2), False),
        (Facts({}, 8), False),
        (None, False),
    ):
        _, events, _ = rewrite(m, rules(text), target=facts)
        assert len(events) == int(fires), facts


def test_target_facts_are_read_only():
    from rewriter.dsl.facts import Facts

    view = Facts({"a": 1})
    with pytest.raises(AttributeError):
        view.a = 2
    assert view.get("a") == 1 and view.get("missing") is None


def test_variadic_inputs_spread_into_a_rewrite():
    text = """
rule sum_to_adds:
    match:
        y = Sum(first, second, ...rest)
    rewrite:
        y = Add(first, Sum(second, ...rest))
"""
    m = model(
        HEAD
        + """
    g (float[1,4] a, float[1,4] b, float[1,4] c, float[1,4] d) => (float[1,4] y) {
      y = Sum(a, b, c, d)
    }"""
    )
    out, events, g = rewrite(m, rules(text))
    assert [e.rule for e in events] == ["sum_to_adds"] * 3  # 4, 3, then 2 inputs
    assert sorted(ops(out)) == ["Add", "Add", "Add", "Sum"]
    assert [len(n.inputs) for n in g.nodes if n.op == "Sum"] == [1]
    assert_same(m, out)


def test_per_group_split_with_comprehension():
    text = """
rule split_groups:
    match:
        y = Conv(x, w: const, b: const?) {group: g, ...attrs}
    where:
        g > 1
    rewrite:
        y = Concat(...[Conv(Slice(x, [i * shape(x)[1] // g], [(i + 1) * shape(x)[1] // g], [1]), group_part(w, g, i), group_part(b, g, i)) {...attrs, group: 1} for i in range(g)]) {axis: 1}
"""
    w = weights(0, w=[6, 2, 3, 3], b=[6])
    m = model(
        HEAD
        + """
    g (float[1,6,5,5] x) => (float[1,6,5,5] y) {
      y = Conv<group=3, pads=[1,1,1,1]>(x, w, b)
    }""",
        w,
    )
    m.graph.node[0].name = "grouped"
    out, _, g = rewrite(m, rules(text))
    assert ops(out).count("Conv") == 3 and ops(out).count("Slice") == 3 and ops(out)[-1] == "Concat"
    assert {tuple(origin_of(n)) for n in g.nodes} == {("grouped",)}  # every piece stands for it
    assert_same(m, out)


def test_created_nodes_record_the_nodes_they_replace():
    text = """
rule relu_of_relu:
    match:
        a = Relu(x)
        y = Relu(a)
    rewrite:
        y = Relu(x)
"""
    m = model(
        HEAD
        + """
    g (float[1,4] x) => (float[1,4] y) {
      a = Relu(x)
      b = Relu(a)
      y = Relu(b)
    }"""
    )
    for i, n in enumerate(m.graph.node):
        n.name = f"relu{i}"
    g = gs.import_onnx(m)
    names = [n.name for n in g.nodes]
    apply_rules(g, rules(text))
    (node,) = g.nodes
    assert sorted(origin_of(node)) == sorted(names)  # transitively, through two rewrites


# ---------------------------------------------------------------- load-time checks
def _err(text: str) -> RuleSyntaxError:
    with pytest.raises(RuleSyntaxError) as ei:
        rules(text)
    return ei.value


def test_helper_arity_is_checked_at_load():
    e = _err("""
rule fold:
    match:
        c = Conv(x, w: const) {...attrs}
        y = BatchNormalization(c, s: const, beta: const, m: const, v: const) {epsilon: eps}
    rewrite:
        y = Conv(x, bn_fold_weight(w, s, v), bn_fold_bias(None, s, beta, m, v, eps)) {...attrs}
""")
    assert (e.line, e.col) == (7, 21)
    assert "helper 'bn_fold_weight' takes 4 to 5 arguments (bn_fold_weight(w, s, v, eps, axis=0)), got 3" in e.message


def test_helper_argument_kind_is_checked_at_load():
    e = _err("""
rule fold:
    match:
        c = Conv(x, w) {...attrs}
        y = BatchNormalization(c, s: const, beta: const, m: const, v: const) {epsilon: eps}
    rewrite:
        y = Conv(x, bn_fold_weight(w, s, v, eps), bn_fold_bias(None, s, beta, m, v, eps)) {...attrs}
""")
    assert "argument 1 of helper 'bn_fold_weight' must be a constant (capture it as `w: const`)" in e.message
    assert (e.line, e.col) == (7, 36)


def test_builtin_arity_is_checked_at_load():
    e = _err(
        "rule r:\n    match:\n        y = Relu(x)\n    where:\n        rank(x, x) == 4\n"
        "    rewrite:\n        y = Sigmoid(x)\n"
    )
    assert (e.line, e.col) == (5, 9) and "'rank' takes 1 argument(s), got 2" in e.message


@pytest.mark.parametrize(
    "text,line,message",
    [
        (
            "rule r:\n    match:\n        op U in NOPE\n        y = U(x)\n    rewrite:\n        y = x\n",
            3,
            "unknown op set 'NOPE'",
        ),
        (
            "rule r:\n    match:\n        op U in {Relu, Frob}\n        y = U(x)\n    rewrite:\n        y = x\n",
            3,
            "unknown ONNX op 'Frob'",
        ),
        (
            "rule r:\n    match:\n        op U in {Relu}\n        y = Relu(x)\n    rewrite:\n        y = x\n",
            3,
            "op variable 'U' is not used",
        ),
        (
            "rule r:\n    match:\n        y = Concat(...p, x)\n    rewrite:\n        y = x\n",
            3,
            "'...p' must be the last input",
        ),
        (
            'rule r:\n    match:\n        y = Relu(x)\n    rewrite:\n        host q: "why"\n',
            5,
            "host pin: 'q' is not a value of the rule",
        ),
        (
            "rule r:\n    match:\n        y = Relu(x)\n    rewrite:\n        y = Sigmoid(...x)\n",
            5,
            "'x' is not a list of values",
        ),
    ],
)
def test_new_constructs_are_checked(text, line, message):
    if "...x" in text:  # a spread of a single value is a rewrite-time error (the value's kind)
        m = model(HEAD + "g (float[1,4] x) => (float[1,4] y) { y = Relu(x) }")
        from rewriter.dsl import RuleError

        with pytest.raises(RuleError, match=message):
            rewrite(m, rules(text))
        return
    e = _err(text)
    assert e.line == line and message in e.message, str(e)


def test_unclosed_bracket_is_reported_on_its_own_line():
    e = _err("rule r:\n    match:\n        y = Relu(x\n    rewrite:\n        y = Sigmoid(x)\n")
    assert (e.line, e.col) == (3, 19) and "not closed" in e.message
