"""Worklist-driven greedy rewriting to a fixed point.

Cost is about linear: gs keeps consumer lists on every tensor (tensor.outputs) and updates them
as node inputs change, so after a rewrite only nodes next to the change are revisited. No
cleanup/toposort/shape inference of the whole graph until the end.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import onnx_graphsurgeon as gs

from rewriter.ir.annotations import host_reason
from rewriter.ir.order import toposort

from .errors import RuleError
from .expr import Evaluator
from .names import NameAuthority
from .rewrite import Rewriter
from .rules import RuleSet


@dataclass
class RewriteEvent:
    rule: str
    matched: list[str]
    created: list[str]


def _helpers() -> dict:
    from passes.helpers import HELPERS
    return HELPERS


def apply_rules(graph: gs.Graph, rules: RuleSet, max_rewrites: int | None = None,
                tracer=None, trace=None) -> list[RewriteEvent]:
    """Rewrite `graph` in place with `rules` (higher priority first, then file order) until no
    rule matches. Raises RuleError if more than `max_rewrites` rewrites happen."""
    tracer = tracer if tracer is not None else trace
    ordered = rules.by_priority()
    by_op: dict[str, list] = {}
    for r in ordered:
        by_op.setdefault(r.anchor_op, []).append(r)
    traced = None
    if tracer is not None:
        traced = next((r for r in ordered if r.name == tracer.name), None)
        if traced is None:
            raise RuleError(f"traced rule '{tracer.name}' is not in the rule set")
    if max_rewrites is None:
        max_rewrites = 10 * len(graph.nodes) + 1000
    try:
        toposort(graph)
    except Exception:  # a cyclic/odd input graph: visit in stored order
        pass
    graph_outputs = {id(t) for t in graph.outputs}
    ev = Evaluator(_helpers(), graph_outputs)
    names = NameAuthority(graph)
    rewriters = {r.name: Rewriter(r, ev, names) for r in ordered}

    work = deque(graph.nodes)
    queued = {id(n) for n in graph.nodes}
    dead: set[int] = set()
    done: set[tuple[int, str]] = set()  # (anchor, rule) already rewritten but kept alive
    events: list[RewriteEvent] = []

    def push(n: gs.Node):
        if id(n) not in queued and id(n) not in dead:
            queued.add(id(n))
            work.append(n)

    while work:
        node = work.popleft()
        queued.discard(id(node))
        if id(node) in dead:
            continue
        if traced is not None and node.op == traced.anchor_op:  # candidates only
            tracer.observe(traced, node, ev)
        for rule in by_op.get(node.op, ()):
            if (id(node), rule.name) in done:
                continue
            got = rule.pattern.match(node, ev)
            if got is None:
                continue
            env, matched = got
            if any(host_reason(n) for n in matched):  # a pass pinned it to the host as it is
                continue
            if len(events) >= max_rewrites:
                last = []
                for e in reversed(events):
                    if e.rule not in last:
                        last.append(e.rule)
                    if len(last) == 5:
                        break
                raise RuleError(f"rule set did not converge after {len(events)} rewrites; "
                                f"last rules applied: {', '.join(last)}")
            rw = rewriters[rule.name]
            edit = rw.commit(graph, env, matched, rw.plan(env), graph_outputs)
            for n in edit.removed:
                dead.add(id(n))
            if id(node) not in dead:
                done.add((id(node), rule.name))
            events.append(RewriteEvent(rule.name, [n.name for n in matched],
                                       [n.name for n in edit.created]))
            if traced is not None and rule is traced:
                tracer.note(f"applied {rule.name} at '{node.name}': created "
                            f"{[n.name for n in edit.created]}")
            for n in edit.created:
                push(n)
                for t in list(n.inputs) + list(n.outputs):
                    for p in t.inputs:
                        push(p)
                    for c in t.outputs:
                        push(c)
            for n in edit.touched:
                push(n)
                for t in n.outputs:
                    for c in t.outputs:
                        push(c)
            for n in matched:
                if id(n) not in dead:
                    push(n)
            break

    if dead:
        graph.nodes = [n for n in graph.nodes if id(n) not in dead]
    if events:
        graph.cleanup()
        toposort(graph)
    return events
