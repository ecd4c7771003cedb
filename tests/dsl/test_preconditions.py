"""Rules whose where-clauses need a host pin (`on_host(v) == R`) are skipped, without a search,
while no node is pinned with R: the same rewrites as searching, fewer searches."""

from __future__ import annotations

import onnx_graphsurgeon as gs
import pytest
from dsl_util import model, rules

from rewriter.dsl import apply_rules, parse_rules
from rewriter.dsl.pattern import Pattern
from rewriter.dsl.preconditions import required_host_reasons
from rewriter.ir.annotations import host_reason, pin_to_host


def _where(text: str, lets: str = "") -> tuple[list, dict]:
    """The where-clauses and let constants of one rule reading `text`."""
    rule = rules(
        f"""{lets}
rule r:
    match:
        op B in {{Mul, Add}}
        y = B(a, b)
    where:
        {text}
    rewrite:
        y = Add(a, b)
"""
    )["r"]
    return rule.defn.where, rule.pattern.consts


@pytest.mark.parametrize(
    "clause, lets, need",
    [
        ('on_host(a) == "R"', "", {"R"}),
        ('"R" == on_host(a)', "", {"R"}),
        ("on_host(a) == Q", 'let Q = "R"', {"R"}),
        ('rank(a) == 3 and on_host(b) == "R" and uses(y) == 1', "", {"R"}),
        ('"R" in [on_host(a), on_host(b)]', "", {"R"}),
        ('on_host(a) == "R" and on_host(b) == "S"', "", {"R", "S"}),
        ('on_host(a) == "R" or rank(a) == 3', "", set()),  # either side may hold
        ('on_host(a) != "R"', "", set()),
        ("on_host(a) == None", "", set()),
        ('"R" in [on_host(a), "x"]', "", set()),  # not only pins in the list
        ('not on_host(a) == "R"', "", set()),
    ],
)
def test_which_clauses_need_a_pin(clause, lets, need):
    where, consts = _where(clause, lets)
    assert required_host_reasons(where, consts) == need


TEXT = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,4] x) => (float[1,3,4] y) {
  p = Mul(x, x)
  r = Round(x)
  m = Mul(r, x)
  s = Add(m, x)
  y = Add(s, p)
}"""
NO_ROUND = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,4] x) => (float[1,3,4] y) {
  m = Mul(x, x)
  y = Add(m, x)
}"""

# pins spread from Round along the chain; `follow` needs the pin `start` makes
CHAIN = """
rule follow:
    match:
        op B in {Mul, Add}
        y = B(a, b)
    where:
        on_host(a) == "Q" and on_host(y) == None
    rewrite:
        host y: "Q"
rule start:
    match:
        y = Round(x)
    where:
        on_host(y) == None
    rewrite:
        host y: "Q"
"""


def _searches(monkeypatch) -> list[str]:
    seen: list[str] = []
    original = Pattern.match

    def counting(self, anchor, ev, fail=None):
        seen.append(anchor.op)
        return original(self, anchor, ev, fail)

    monkeypatch.setattr(Pattern, "match", counting)
    return seen


def test_a_pin_made_in_the_same_run_enables_the_rules_that_need_it(monkeypatch):
    graph = gs.import_onnx(model(TEXT))
    searches = _searches(monkeypatch)
    events = apply_rules(graph, rules(CHAIN))
    assert [e.rule for e in events] == ["start", "follow", "follow", "follow"]
    assert [host_reason(n) for n in graph.nodes] == [None, "Q", "Q", "Q", "Q"]
    # the first Mul comes before Round: no node is pinned yet, so it is skipped, not searched;
    # once the last Add is pinned it is a neighbour again, and searched (and fails: x is not)
    assert searches == ["Round", "Mul", "Add", "Add", "Mul"]


def test_without_the_pin_the_rule_is_never_searched(monkeypatch):
    graph = gs.import_onnx(model(NO_ROUND))
    only_follow = parse_rules(CHAIN.split("rule start:")[0])
    searches = _searches(monkeypatch)
    assert apply_rules(graph, only_follow) == []
    assert searches == []


def test_a_pin_already_in_the_graph_counts(monkeypatch):
    graph = gs.import_onnx(model(TEXT))
    pin_to_host(graph.nodes[1], "Q")  # the Round, pinned by an earlier pass
    only_follow = parse_rules(CHAIN.split("rule start:")[0])
    events = apply_rules(graph, only_follow)
    assert [e.rule for e in events] == ["follow", "follow", "follow"]
