"""Pattern matching features: commutativity, defaults, multi-output, optional, wildcards."""

import numpy as np
import pytest
from dsl_util import assert_same, matching_graphs, model, ops, rewrite, rules, weights

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'

ADD_ZERO = """
rule add_zero:
    match:
        y = Add(x, z: const)
    where:
        value(z) == 0.0 and shape(z) == [1]
    rewrite:
        y = Identity(x)
"""


@pytest.mark.parametrize("order", ["x, zero", "zero, x"])
def test_commutative_add_matches_both_orders(order):
    m = model(
        HEAD
        + f"""
    g (float[1,3,4] x) => (float[1,3,4] y) {{
      y = Add({order})
    }}""",
        {"zero": np.zeros([1], np.float32)},
    )
    out, events, _ = rewrite(m, rules(ADD_ZERO))
    assert len(events) == 1 and ops(out) == ["Identity"]
    assert_same(m, out)


def test_non_commutative_sub_is_not_swapped():
    m = model(
        HEAD
        + """
    g (float[1,3,4] x) => (float[1,3,4] y) {
      y = Sub(zero, x)
    }""",
        {"zero": np.zeros([1], np.float32)},
    )
    text = ADD_ZERO.replace("Add", "Sub")
    out, events, _ = rewrite(m, rules(text))
    assert events == []


DEFAULTS = """
rule plain_conv_relu_to_clip:
    match:
        c = Conv(x, w: const) {strides: [1, 1], dilations: [1, 1], pads: [0, 0, 0, 0], group: 1}
        y = Relu(c)
    rewrite:
        t = Conv(x, w) {kernel_shape: [1, 1]}
        y = Clip(t, 0.0)
"""


@pytest.mark.parametrize(
    "attrs,fires",
    [
        ("", True),
        ("<strides=[1,1], group=1>", True),
        ("<strides=[2,2]>", False),
        ("<pads=[0,0,1,1]>", False),
    ],
)
def test_schema_and_derived_defaults(attrs, fires):
    m = model(
        HEAD
        + f"""
    g (float[1,3,4,4] x) => (float[1,2,?,?] y) {{
      c = Conv{attrs}(x, w)
      y = Relu(c)
    }}""",
        weights(w=[2, 3, 1, 1]),
    )
    out, events, g = rewrite(m, rules(DEFAULTS))
    assert len(events) == int(fires)
    if fires:
        assert ops(out) == ["Conv", "Clip"]
        assert g.nodes[0].attrs == {"kernel_shape": [1, 1]}
        assert list(g.nodes[0].outputs[0].shape) == [1, 2, 4, 4]  # inferred locally
    assert_same(m, out)


def test_multi_output_pattern_and_rewrite():
    text = """
rule split_then_swap:
    match:
        a, b = Split(x) {axis: ax}
        y = Concat(b, a) {axis: ax2}
    where:
        ax == ax2
        ax >= 0
    rewrite:
        p, q = Split(x) {axis: ax - rank(x)}
        y = Concat(q, p) {axis: ax - rank(x)}
"""
    m = model(
        HEAD
        + """
    g (float[1,4,3] x) => (float[1,4,3] y) {
      a, b = Split<axis=1>(x)
      y = Concat<axis=1>(b, a)
    }"""
    )
    out, events, g = rewrite(m, rules(text))
    assert len(events) == 1
    assert ops(out) == ["Split", "Concat"]
    assert all(n.attrs["axis"] == -2 for n in g.nodes)
    # fresh intermediates got shapes from local inference
    split = [n for n in g.nodes if n.op == "Split"][0]
    assert [list(o.shape) for o in split.outputs] == [[1, 2, 3], [1, 2, 3]]
    assert_same(m, out)


OPTIONAL = """
rule drop_clip_min:
    match:
        y = Clip(x, lo?, hi: const?)
    where:
        lo == None
        hi != None
    rewrite:
        y = Min(x, hi)
"""

MIDDLE_NONE = """
rule min_as_clip:
    match:
        y = Min(x, h: const)
    where:
        rank(h) == 0
    rewrite:
        y = Clip(x, None, h)
"""

TRAILING = """
rule relu_as_clip:
    match:
        y = Relu(x)
    rewrite:
        y = Clip(x, 0.0, None)
"""


def test_optional_input_missing_binds_none():
    m = model(
        HEAD
        + """
    g (float[1,3,4] x) => (float[1,3,4] y) {
      y = Clip(x, , hi)
    }""",
        {"hi": np.array(0.5, np.float32)},
    )
    out, events, g = rewrite(m, rules(OPTIONAL))
    assert len(events) == 1 and ops(out) == ["Min"]
    assert_same(m, out)


def test_none_in_the_middle_becomes_empty_input():
    m = model(
        HEAD
        + """
    g (float[1,3,4] x) => (float[1,3,4] y) {
      y = Min(x, hi)
    }""",
        {"hi": np.array(0.5, np.float32)},
    )
    out, events, g = rewrite(m, rules(MIDDLE_NONE))
    assert len(events) == 1 and ops(out) == ["Clip"]
    assert len(g.nodes[0].inputs) == 3 and g.nodes[0].inputs[1].name == ""
    assert_same(m, out)


def test_optional_trailing_none_is_dropped():
    m = model(
        HEAD
        + """
    g (float[1,3,4] x) => (float[1,3,4] y) {
      y = Relu(x)
    }"""
    )
    out, events, g = rewrite(m, rules(TRAILING))
    assert len(events) == 1
    assert len(g.nodes[0].inputs) == 2  # Clip(x, 0.0, None) -> Clip(x, 0.0)
    assert_same(m, out)


def test_optional_present_input_is_bound():
    m = model(
        HEAD
        + """
    g (float[1,3,4] x) => (float[1,3,4] y) {
      y = Clip(x, lo, hi)
    }""",
        {"lo": np.array(-0.5, np.float32), "hi": np.array(0.5, np.float32)},
    )
    _, events, _ = rewrite(m, rules(OPTIONAL))
    assert events == []  # lo is bound, so `lo == None` fails


def test_const_requirement():
    text = """
rule mul_const:
    match:
        y = Mul(x, k: const)
    rewrite:
        y = Mul(k, x)
"""
    m = model(
        HEAD
        + """
    g (float[1,3] x, float[1,3] z) => (float[1,3] y) {
      y = Mul(x, z)
    }"""
    )
    _, events, _ = rewrite(m, rules(text))
    assert events == []


def test_same_name_twice_must_be_same_tensor():
    text = """
rule square:
    match:
        y = Mul(x, x)
    rewrite:
        y = Pow(x, 2.0)
"""
    m = model(
        HEAD
        + """
    g (float[1,3] x, float[1,3] z) => (float[1,3] y, float[1,3] w) {
      y = Mul(x, x)
      w = Mul(x, z)
    }"""
    )
    out, events, _ = rewrite(m, rules(text))
    assert len(events) == 1 and sorted(ops(out)) == ["Mul", "Pow"]
    assert_same(m, out)


def test_wildcard_matches_anything():
    text = """
rule relu_after_any_add:
    match:
        a = Add(_, _)
        y = Relu(a)
    rewrite:
        y = Sigmoid(a)
"""
    m = model(
        HEAD
        + """
    g (float[1,3] x, float[1,3] z) => (float[1,3] y) {
      a = Add(x, z)
      y = Relu(a)
    }"""
    )
    out, events, _ = rewrite(m, rules(text))
    assert len(events) == 1 and ops(out) == ["Add", "Sigmoid"]


def test_extra_inputs_block_match():
    text = """
rule conv_no_bias:
    match:
        y = Conv(x, w)
    rewrite:
        y = Conv(x, w) {group: 1}
"""
    m = model(
        HEAD
        + """
    g (float[1,3,4,4] x) => (float[1,2,4,4] y) {
      y = Conv(x, w, b)
    }""",
        weights(w=[2, 3, 1, 1], b=[2]),
    )
    _, events, _ = rewrite(m, rules(text))
    assert events == []  # dropping the bias would be wrong


CONV_SHAPES = """
rule rank3_conv_relu_to_clip:
    match:
        c = Conv(x, w: const, b: const?) {...attrs}
        y = Relu(c)
    where:
        rank(x) == 3 and shape(w)[2] == 3 and rank(b) == 1
    rewrite:
        y = Clip(Conv(x, w, b) {...attrs}, 0.0)
"""


def test_matching_reads_a_weight_s_shape_without_loading_it(monkeypatch):
    """`w: const`, shape(w) and rank(w) are answered from the initializer's dims: a rule that does not
    fire never reads the weight's values (a model's weights are loaded only where a rewrite uses
    them). When the rule fires, the values it rewrites with are loaded and exact."""
    from onnx_graphsurgeon.ir.tensor import LazyValues

    loaded = []
    real = LazyValues.load
    monkeypatch.setattr(LazyValues, "load", lambda self: loaded.append(self.tensor.name) or real(self))
    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "b": rng.standard_normal(4).astype(np.float32)}
    rank4 = model(
        HEAD
        + """
    g (float[1,2,6,6] x) => (float[1,4,6,6] y) {
      c = Conv<pads = [1, 1, 1, 1]>(x, w, b)
      y = Relu(c)
    }""",
        inits,
    )
    out, events, _ = rewrite(rank4, rules(CONV_SHAPES))
    assert events == [] and loaded == []  # failed on rank(x), with shape(w) and rank(b) read
    inits["w"] = inits["w"][:, :, 0]
    rank3 = model(
        HEAD
        + """
    g (float[1,2,6] x) => (float[1,4,6] y) {
      c = Conv<pads = [1, 1]>(x, w, b)
      y = Relu(c)
    }""",
        inits,
    )
    out, events, _ = rewrite(rank3, rules(CONV_SHAPES))
    assert len(events) == 1
    assert_same(rank3, out)


def _searched(pattern, anchor, ev):
    """Pattern.match by the general backtracking search from the anchor (what every pattern used
    before one-node patterns got their shortcut)."""
    from rewriter.dsl.expr import EvalError, truth

    for env, matched in pattern._search(0, anchor, dict(pattern.consts), {}, ev, None):
        try:
            holds = all(truth(ev.eval(clause, env)) for clause in pattern.where)
        except EvalError:
            holds = False
        if holds:
            return env, [matched[i] for i in range(len(pattern.nodes))]
    return None


def test_one_node_patterns_bind_as_the_general_search_does(tmp_path):
    """Every one-node pattern of the hailo8 rules, at every node of random graphs (convs of every
    kind, BN, pools, activations, layout ops, Round, If) and of the field fixture: the same
    binding (the same objects) or the same refusal as the backtracking search."""
    from pathlib import Path

    import onnx_graphsurgeon as gs

    from passes.helpers import HELPERS
    from rewriter.dsl import load_rule_files
    from rewriter.dsl.expr import Evaluator
    from rewriter.target import load_target

    root = Path(__file__).resolve().parents[2]
    target = load_target("hailo8")
    ruleset = load_rule_files(sorted((root / "rules" / "hailo8").glob("*.rw")), HELPERS)
    one_node = [r for r in ruleset.by_priority() if len(r.pattern.nodes) == 1]
    assert len(one_node) >= 20
    outcomes = {"matched": 0, "refused": 0}
    for graph, outputs in matching_graphs(21, 40):
        ev = Evaluator(HELPERS, outputs, target)
        for rule in one_node:
            for node in graph.nodes:
                if node.op not in rule.pattern.anchor_ops:
                    continue
                got, want = rule.pattern.match(node, ev), _searched(rule.pattern, node, ev)
                assert (got is None) == (want is None), (rule.name, node.name)
                if got is None:
                    outcomes["refused"] += 1
                    continue
                outcomes["matched"] += 1
                assert [id(n) for n in got[1]] == [id(n) for n in want[1]]
                assert got[0].keys() == want[0].keys()
                for key, value in got[0].items():
                    other = want[0][key]
                    assert value is other or (not isinstance(value, gs.Tensor) and value == other), (rule.name, key)
    assert outcomes["matched"] >= 20 and outcomes["refused"] >= 100, outcomes


SWAPPED = """
rule scale_by_vector:
    match:
        y = Mul(x, c: const)
    where:
        rank(c) == 1
    rewrite:
        y = Mul(c, x)
"""


def test_a_one_node_commutative_pattern_tries_the_swapped_order_when_the_first_fails_where():
    """Mul(v, m) with both constant: binding x=v, c=m binds but fails `rank(c) == 1`; the swapped
    binding x=m, c=v holds, and is the one returned."""
    import onnx_graphsurgeon as gs

    from passes.helpers import HELPERS
    from rewriter.dsl.expr import Evaluator

    m = model(
        HEAD
        + """
    g (float[2,3,4] x) => (float[2,3,4] y) {
      p = Mul(v, m)
      y = Add(x, p)
    }""",
        {"v": np.arange(4, dtype=np.float32), "m": np.ones((2, 3, 4), np.float32)},
    )
    graph = gs.import_onnx(m)
    rule = rules(SWAPPED).by_priority()[0]
    mul = next(n for n in graph.nodes if n.op == "Mul")
    env, matched = rule.pattern.match(mul, Evaluator(HELPERS))
    assert matched == [mul] and env["c"].name == "v" and env["x"].name == "m"
