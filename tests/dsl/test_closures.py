"""Compiled expressions (rewriter.dsl.closures) give the interpreter's answers and errors."""

import dataclasses
from pathlib import Path

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from dsl_util import matching_graphs

from passes.helpers import HELPERS
from rewriter.dsl import ast as A
from rewriter.dsl.expr import EvalError, Evaluator
from rewriter.dsl.facts import Facts
from rewriter.dsl.parser import parse_text
from rewriter.target import load_target

ROOT = Path(__file__).resolve().parents[2]


def _outcome(fn):
    try:
        return "value", fn()
    except EvalError as exc:
        return "error", str(exc)


def _same(a, b) -> bool:
    if isinstance(a, gs.Tensor) or isinstance(b, gs.Tensor):
        return a is b
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, Facts) or isinstance(b, Facts):
        return type(a) is type(b) and repr(a) == repr(b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return type(a) is type(b) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _agree(ev: Evaluator, e: A.Expr, env: dict) -> str:
    """Evaluates e both ways; returns "value" or "error" (the outcome both gave)."""
    kind, got = _outcome(lambda: ev.function(e)(env))
    want_kind, want = _outcome(lambda: ev.eval(e, env))
    assert kind == want_kind, (e.text, got, want)
    assert _same(got, want), (e.text, got, want)
    return kind


def _expressions(x, out: list) -> list:
    """Every expression node inside a syntax-tree object, outermost first."""
    if isinstance(x, A.Expr):
        out.append(x)
    if isinstance(x, list):
        for item in x:
            _expressions(item, out)
    elif isinstance(x, dict):
        for item in x.values():
            _expressions(item, out)
    elif dataclasses.is_dataclass(x) and not isinstance(x, A.Pos):
        for f in dataclasses.fields(x):
            _expressions(getattr(x, f.name), out)
    return out


def test_every_shipped_rule_expression_agrees_at_every_binding_of_random_graphs():
    """Each expression of every shipped rule (where-clauses, rewrite values and attributes, and
    every sub-expression of them), at every structural binding of its pattern at every node of
    random graphs (convs of every kind, BN, pools, layout ops, Round, If) and the field fixture:
    the same value, or the same EvalError message, compiled and interpreted."""
    from rewriter.dsl import load_rule_files

    target = load_target("hailo8")
    files = sorted((ROOT / "rules").rglob("*.rw"))
    ruleset = load_rule_files(files, HELPERS)
    rules = [(r, _expressions(r.defn.where, []) + _expressions(r.defn.rewrite, [])) for r in ruleset.by_priority()]
    assert len(rules) >= 60
    seen = {"value": 0, "error": 0}
    for graph, outputs in matching_graphs(37, 25):
        ev = Evaluator(HELPERS, outputs, target)
        for rule, exprs in rules:
            pattern = rule.pattern
            for node in graph.nodes:
                if node.op not in pattern.anchor_ops:
                    continue
                for env, _ in pattern._search(0, node, dict(pattern.consts), {}, ev, None):
                    for e in exprs:
                        seen[_agree(ev, e, env)] += 1
    assert seen["value"] >= 2000 and seen["error"] >= 100, seen


def _expr(text: str) -> A.Expr:
    rule = parse_text(
        f"rule r:\n    match:\n        y = Relu(x)\n    where:\n        {text}\n    rewrite:\n        y = x\n"
    )[0]
    return rule.where[0]


@dataclasses.dataclass
class _Target:
    name: str
    width: int


CASES = [
    "x",
    "missing",
    "target",
    "target.width + 1",
    "target.nothing",
    "n.width",
    "[n, 2, n * 3][1]",
    "[1, 2, 3][n]",
    "[1, 2][7]",
    "d['k']",
    "d['absent'] == None",
    "s[1:]",
    "s[:n]",
    "n[1:2]",
    "[v * 2 for v in s]",
    "[v for v in n]",
    "not n",
    "-n",
    "-s",
    "n / 0",
    "s + [4]",
    "s * 2",
    "n in s and n > 0",
    "n in s or missing",
    "missing or n",
    "2.5 == f",
    "f < 3 and f >= 0.5",
    "rank(x) == 3 and shape(x)[1] == 4",
    "shape(y)",
    "value(x)",
    "value(c) == [2]",
    "is_const(c) and not is_const(x)",
    "uses(x)",
    "nosuch(x)",
    "len(n)",
    "max(s) + min(1, 2)",
    "range(n)",
    "'on' in 'only'",
]


@pytest.mark.parametrize("text", CASES)
def test_each_construct_and_its_errors_agree(text):
    x = gs.Variable("x", np.float32, [1, 4, 5])
    c = gs.Constant("c", np.array([2], dtype=np.int64))
    y = gs.Variable("y", np.float32, None)
    env = {"x": x, "c": c, "y": y, "n": 2, "f": 2.5, "s": [1, 2, 3], "d": {"k": 7}}
    ev = Evaluator(HELPERS, set(), _Target("hailo8", 512))
    e = _expr(text)
    _agree(ev, e, env)
    _agree(Evaluator(HELPERS), e, env)  # no target loaded


def test_a_spread_outside_a_rewrite_op_is_the_same_error():
    s = _expr("s")
    spread = A.Spread(s.pos, "...s", s)
    assert _agree(Evaluator(HELPERS), spread, {"s": [1]}) == "error"


def test_compiled_once_per_expression():
    ev = Evaluator(HELPERS)
    e = _expr("n + 1")
    assert ev.function(e) is ev.function(e)
    assert ev.function(e)({"n": 2}) == 3


def test_a_subclass_that_refines_eval_is_asked_for_every_expression():
    """The prover's symbolic evaluator overrides eval node by node: function() must not bypass it."""
    asked = []

    class Recording(Evaluator):
        def eval(self, e, env):
            asked.append(e.text)
            return super().eval(e, env)

    ev = Recording(HELPERS)
    assert ev.function(_expr("n + 1 > 2"))({"n": 2}) is True
    assert asked[:3] == ["n + 1 > 2", "n + 1", "n"]
