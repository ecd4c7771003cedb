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
from rewriter.ir.edit import remove_dead_nodes
from rewriter.ir.order import toposort

from .errors import RuleError
from .expr import Evaluator
from .names import NameAuthority
from .rewrite import Rewriter
from .rules import RuleSet


@dataclass
class RewriteEvent:
    """One rewrite the driver made: the rule, the nodes it matched and created."""

    rule: str
    matched: list[str]
    created: list[str]


def apply_rules(
    graph: gs.Graph,
    rules: RuleSet,
    max_rewrites: int | None = None,
    tracer=None,
    trace=None,
    helpers=None,
    target=None,
    tracers=(),
    assume_sorted: bool = False,
) -> list[RewriteEvent]:
    """Rewrite `graph` in place with `rules` (higher priority first, then file order) until no
    rule matches. Raises RuleError if more than `max_rewrites` rewrites happen, or if a rewrite
    would break the graph (a replaced value changes shape or dtype, a new node is invalid).

    `helpers` is the registry of native helpers the rules call; `target` the target whose facts
    `where:` clauses read (`target.ops.Conv.group_split`). `tracer` explains one rule (it must be
    in `rules`); `tracers` are shared with other rule sets: each observes its own rule when present
    and hears of every node another rule consumes. The graph is left in topological order; a
    caller that knows it already is (`assume_sorted`) saves the initial sort."""
    tracer = tracer if tracer is not None else trace
    ordered = rules.by_priority()
    by_op: dict[str, list] = {}
    for r in ordered:
        for op in sorted(r.anchor_ops):
            by_op.setdefault(op, []).append(r)
    all_tracers = list(tracers)
    if tracer is not None:
        if not any(r.name == tracer.name for r in ordered):
            raise RuleError(f"traced rule '{tracer.name}' is not in the rule set")
        all_tracers.append(tracer)
    watching: dict[str, list] = {}  # anchor op -> [(tracer, rule)]
    for t in all_tracers:
        rule = next((r for r in ordered if r.name == t.name), None)
        if rule is not None:
            if not t.wanted_ops:
                t.bind(rule)
            for op in rule.anchor_ops:
                watching.setdefault(op, []).append((t, rule))
    # only nodes of an anchor (or watched) op can ever match: a node keeps its op, so the others
    # are never visited, and a file with no candidate at all costs one scan of the ops
    wanted = by_op.keys() | watching.keys()
    if not assume_sorted:
        try:
            toposort(graph)
        except Exception:  # noqa: BLE001  (a cyclic/odd input graph: visit in stored order)
            pass
    if not any(n.op in wanted for n in graph.nodes):
        return []
    if max_rewrites is None:
        max_rewrites = 10 * len(graph.nodes) + 1000
    graph_outputs = {id(t) for t in graph.outputs}
    ev = Evaluator(rules.helpers if helpers is None else helpers, graph_outputs, target)
    names = NameAuthority(graph, lazy=True)  # seeded before the first edit: most candidates never match
    rewriters = {r.name: Rewriter(r, ev, names) for r in ordered}

    # host reasons pinned so far (only ever grows here: pins come from edits, which say so); read
    # from every node only when some rule of the set needs a pin to be searched at all
    needed = any(r.pattern.required_reasons for r in ordered)
    reasons = {r for n in graph.nodes if (r := host_reason(n)) is not None} if needed else set()
    work = deque(n for n in graph.nodes if n.op in wanted)
    queued = {id(n) for n in work}
    dead: set[int] = set()
    done: set[tuple[int, str]] = set()  # (anchor, rule) already rewritten but kept alive
    events: list[RewriteEvent] = []

    # Nodes of If/Loop/Scan bodies appear among a tensor's consumers too; they are not this graph's.
    members = {id(n) for n in graph.nodes}

    def push(n: gs.Node):
        if n.op in wanted and id(n) in members and id(n) not in queued and id(n) not in dead:
            queued.add(id(n))
            work.append(n)

    def push_around(n: gs.Node):
        push(n)
        for t in list(n.inputs) + list(n.outputs):
            for p in t.inputs:
                push(p)
            for c in t.outputs:
                push(c)

    # per anchor op: (rule, its name, its pattern's match, the host reasons it needs), in priority order
    candidates = {
        op: [(r, r.name, r.pattern.match, r.pattern.required_reasons) for r in rs] for op, rs in by_op.items()
    }
    while work:
        node = work.popleft()
        nid = id(node)
        queued.discard(nid)
        if nid in dead:
            continue
        if watching:
            for t, traced in watching.get(node.op, ()):  # candidates only
                t.observe(traced, node, ev)
        for rule, name, match, required in candidates.get(node.op, ()):
            if done and (nid, name) in done:
                continue
            if required and not required <= reasons:  # no node pinned with a reason it needs
                continue
            got = match(node, ev)
            if got is None:
                continue
            env, matched = got
            if any(id(n) not in members for n in matched):  # a node of an If/Loop body
                continue
            # a node pinned to the host runs there as it is: rewriting it would lose the pin and its
            # reason; rules of `host:` pins alone may still match it (to extend a host region)
            if not rule.pins_only and any(host_reason(n) for n in matched):
                continue
            if len(events) >= max_rewrites:
                last = []
                for e in reversed(events):
                    if e.rule not in last:
                        last.append(e.rule)
                    if len(last) == 5:
                        break
                raise RuleError(
                    f"rule set did not converge after {len(events)} rewrites; last rules applied: {', '.join(last)}"
                )
            names.seed()  # the graph as this pass found it: the names it holds are taken
            rw = rewriters[rule.name]
            rw.anchor = node
            edit = rw.commit(graph, env, matched, rw.plan(env), graph_outputs)
            rw.anchor = None
            for n in edit.removed:
                dead.add(id(n))
                for t in all_tracers:
                    t.consumed(n, rule)
            if id(node) not in dead:
                done.add((id(node), rule.name))
            reasons.update(r for n in edit.pinned if (r := host_reason(n)) is not None)
            if not edit.changed:
                continue  # e.g. `y = x` on a value nothing reads: try the next rule
            events.append(RewriteEvent(rule.name, [n.name for n in matched], [n.name for n in edit.created]))
            for t, traced in watching.get(node.op, ()):
                if traced is rule:
                    t.note(f"applied {rule.name} at '{node.name}': created {[n.name for n in edit.created]}")
            members.update(id(n) for n in edit.created)
            for n in edit.created + edit.pinned + edit.rewired:
                push_around(n)
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
        remove_dead_nodes(graph)
        toposort(graph)
    return events
