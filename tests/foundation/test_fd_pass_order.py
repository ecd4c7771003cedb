"""The pass manager tells a pass whether the graph is sorted (ctx.sorted): true only while no pass
has changed the graph since a pass that leaves it sorted; a rule-file pass handed an unsorted
graph sorts it, one handed a sorted graph does not sort again."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from rewriter.dsl import parse_rules
from rewriter.transform.pass_manager import Pass, PassManager
from rewriter.transform.rules_pass import RuleFilePass


def chain(n=6) -> gs.Graph:
    x = gs.Variable("x", np.float32, [1, 4])
    values, nodes = [x], []
    for k in range(n):
        y = gs.Variable(f"y{k}", np.float32, [1, 4])
        nodes.append(gs.Node("Relu" if k % 2 else "Sigmoid", f"n{k}", inputs=[values[-1]], outputs=[y]))
        values.append(y)
    return gs.Graph(nodes=nodes, inputs=[x], outputs=[values[-1]])


class Spy(Pass):
    """Records what the manager told it (ctx.sorted) and changes nothing."""

    name = "spy"
    repeat = False

    def __init__(self):
        self.seen = []

    def run(self, graph, ctx):
        self.seen.append(ctx.sorted)
        return []


class Scramble(Spy):
    """Reverses the node order once (and says so), as a careless native pass might."""

    name = "scramble"

    def run(self, graph, ctx):
        super().run(graph, ctx)
        graph.nodes = graph.nodes[::-1]
        return ["scrambled"]


RULES = parse_rules(
    "rule relu_stays:\n    match:\n        y = Relu(x)\n    where:\n        false\n    rewrite:\n        y = Relu(x)\n"
)


def test_a_rule_pass_sorts_what_a_native_pass_scrambled():
    graph = chain()
    first, scramble, spy = Spy(), Scramble(), Spy()
    rules = RuleFilePass("relu.rw", RULES)
    rules.repeat = False
    PassManager([first, scramble, rules, spy]).run(graph)
    assert first.seen == [False] and scramble.seen == [False]  # nothing has sorted yet
    assert spy.seen == [True]  # the rule pass left it sorted
    assert [n.name for n in graph.nodes] == [f"n{k}" for k in range(6)]


def test_a_sorted_graph_is_not_sorted_again(monkeypatch):
    import rewriter.dsl.driver as driver

    sorts = []
    real = driver.toposort
    monkeypatch.setattr(driver, "toposort", lambda g: sorts.append(1) or real(g))
    graph = chain()
    a, b = RuleFilePass("a.rw", RULES), RuleFilePass("b.rw", RULES)
    a.repeat = b.repeat = False
    PassManager([a, b]).run(graph)
    assert len(sorts) == 1  # a sorts the graph it was handed; b is told it is sorted
