"""Compiled match patterns and the backtracking matcher.

The matcher anchors at the last node of the `match:` block and reaches the other pattern nodes by
walking producers of bound values (or consumers, for nodes only reachable that way).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import onnx_graphsurgeon as gs

from . import ast as A
from .attrs import get_attr
from .expr import EvalError, Evaluator, compare, show, truth
from .preconditions import required_host_reasons
from .tensors import is_const, is_empty

COMMUTATIVE = {"Add", "Mul", "Max", "Min", "Sum"}


@dataclass
class Step:
    """How pattern node `index` is found: the anchor, the producer of a bound value, or a
    consumer of a bound value."""

    index: int
    how: str  # "anchor" | "producer" | "consumer"
    value: str = ""  # the bound value the walk starts from


class Failure:
    """Best (deepest) reason a match failed, kept only when tracing."""

    def __init__(self):
        self.depth, self.reason = -1, None

    def add(self, depth: float, reason: str):
        if depth > self.depth:
            self.depth, self.reason = depth, reason


def _where_reason(ev: Evaluator, clause: A.Expr, env: dict) -> str:
    detail = []
    if isinstance(clause, A.Bin):
        for side in (clause.left, clause.right):
            if not isinstance(side, A.Lit):
                try:
                    detail.append(f"{side.text} = {show(ev.eval(side, env))}")
                except EvalError:
                    pass
    extra = f" ({', '.join(detail)})" if detail else ""
    return f"where '{clause.text}' is false{extra}"


class Pattern:
    def __init__(
        self,
        nodes: list[A.MatchNode],
        where: list[A.Expr],
        plan: list[Step],
        literals: dict,
        opvars: dict | None = None,
        consts: dict | None = None,
    ):
        self.nodes, self.where, self.plan = nodes, where, plan
        self.consts = dict(consts or {})  # file-level `let` constants: every match starts with them
        # host reasons some node must be pinned with before any candidate can match (the driver's check)
        self.required_reasons = required_host_reasons(where, self.consts)
        self.literals = literals  # (node index, attr key) -> evaluated literal constraint
        self.opvars = {k: frozenset(v.ops) for k, v in (opvars or {}).items()}
        # ops each pattern node may have: its op, or the set of its op variable
        self.node_ops = [self.opvars.get(n.op, frozenset([n.op])) for n in nodes]
        self.anchor_ops = self.node_ops[-1]
        self.anchor_op = nodes[-1].op  # the op, or the op variable's name
        self.producer_of = {o: (i, k) for i, n in enumerate(nodes) for k, o in enumerate(n.outputs) if o != "_"}
        # (anchor input slot, ops its producer must have) for anchor inputs another pattern node
        # produces: most candidates fail here, before the search builds any binding
        anchor = nodes[-1]
        self.producer_checks = [
            (k, self.node_ops[self.producer_of[a.name][0]])
            for k, a in enumerate(anchor.args)
            if not (a.rest or a.optional) and a.name in self.producer_of
        ]
        self.anchor_swappable = len(anchor.args) >= 2 and not anchor.args[-1].rest

    def ops_text(self, i: int) -> str:
        ops = sorted(self.node_ops[i])
        return ops[0] if len(ops) == 1 else f"{self.nodes[i].op} in {{{', '.join(ops)}}}"

    # -- public
    def match(self, anchor: gs.Node, ev: Evaluator, fail: Failure | None = None) -> tuple[dict, list[gs.Node]] | None:
        """First binding (captures, matched nodes in pattern order) whose where-clauses hold."""
        if anchor.op not in self.anchor_ops:
            if fail is not None:
                fail.add(0, f"op {self.ops_text(len(self.nodes) - 1)} expected, got {anchor.op}")
            return None
        if fail is None and self.producer_checks and not self._producers_may_match(anchor):
            return None  # (when tracing, the search runs and says why)
        for env, matched in self._bindings(anchor, ev, fail):
            ok = True
            for clause in self.where:
                try:
                    holds = truth(ev.function(clause)(env))
                    reason = None
                except EvalError as e:
                    holds, reason = False, f"where '{clause.text}' could not be evaluated: {e}"
                if not holds:
                    if fail is not None:  # the reason costs evaluations: only when tracing
                        reason = reason or _where_reason(ev, clause, env)
                        fail.add(len(self.nodes), f"node '{anchor.name}' ({anchor.op}): {reason}")
                    ok = False
                    break
            if ok:
                return env, [matched[i] for i in range(len(self.nodes))]
        return None

    def _bindings(self, anchor: gs.Node, ev: Evaluator, fail) -> Iterator[tuple[dict, dict]]:
        """_search from the anchor; a one-node pattern (most rules) binds the anchor alone, without
        the search's generator per pattern node."""
        if len(self.plan) > 1:
            yield from self._search(0, anchor, dict(self.consts), {}, ev, fail)
            return
        index = self.plan[0].index
        for env in self._match_node(index, anchor, self.consts, ev, fail, 0):
            yield env, {index: anchor}

    def _producers_may_match(self, anchor: gs.Node) -> bool:
        """A necessary condition for a match: the anchor's inputs that pattern nodes produce have
        producers of those nodes' ops (in either order of a commutative op's first two inputs, as
        the search tries them)."""
        inputs = anchor.inputs

        def holds(swap: bool) -> bool:
            for k, ops in self.producer_checks:
                slot = (1 - k if k < 2 else k) if swap else k
                if slot >= len(inputs):
                    return False
                producers = inputs[slot].inputs
                if not producers or producers[0].op not in ops:
                    return False
            return True

        return holds(False) or (anchor.op in COMMUTATIVE and self.anchor_swappable and holds(True))

    # -- search
    def _candidates(self, step: Step, env: dict) -> list[gs.Node]:
        if step.how == "producer":
            t = env.get(step.value)
            return list(t.inputs) if isinstance(t, gs.Tensor) else []
        t = env.get(step.value)
        if not isinstance(t, gs.Tensor):
            return []
        want = self.node_ops[step.index]
        seen, out = set(), []
        for n in t.outputs:
            if n.op in want and id(n) not in seen:
                seen.add(id(n))
                out.append(n)
        return out

    def _search(self, k: int, anchor: gs.Node, env: dict, matched: dict, ev, fail) -> Iterator[tuple[dict, dict]]:
        if k == len(self.plan):
            yield env, matched
            return
        step = self.plan[k]
        cands = [anchor] if step.how == "anchor" else self._candidates(step, env)
        for node in cands:
            if any(m is node for m in matched.values()):
                continue
            for env2 in self._match_node(step.index, node, env, ev, fail, k):
                m2 = dict(matched)
                m2[step.index] = node
                yield from self._search(k + 1, anchor, env2, m2, ev, fail)

    def _match_node(self, i: int, node: gs.Node, env: dict, ev, fail, depth: int) -> Iterator[dict]:
        pn = self.nodes[i]
        if fail is None:
            no = _quiet
        else:

            def no(d: float, why: str):
                fail.add(depth + d, f"node '{node.name}' ({node.op}): {why}")

        if node.op not in self.node_ops[i]:
            no(0, f"op {self.ops_text(i)} expected, got {node.op}")
            return
        env = dict(env)
        if pn.op in self.opvars:  # an op variable: the same op wherever it occurs
            if env.get(pn.op, node.op) != node.op:
                no(0, f"op {pn.op} is {env[pn.op]} here, got {node.op}")
                return
            env[pn.op] = node.op
        outputs = node.outputs
        for k, name in enumerate(pn.outputs):
            if name == "_":
                continue
            if k >= len(outputs):
                no(0.1, f"has no output {k} for '{name}'")
                return
            t = outputs[k]
            if name in env and env[name] is not t:
                no(0.1, f"output {k} is not the bound value '{name}'")
                return
            env[name] = t
        args = pn.args
        inputs = node.inputs
        rest = args[-1] if args and args[-1].rest else None
        if rest is not None:  # `...parts`: every remaining input, as a list
            args = args[:-1]
            env[rest.name] = [t for t in inputs[len(args) :] if not is_empty(t)]
        elif len(inputs) > len(args) and any(not is_empty(t) for t in inputs[len(args) :]):
            no(0.2, f"has {len(inputs)} inputs, pattern expects at most {len(args)}")
            return
        if node.op in COMMUTATIVE and len(args) >= 2 and rest is None:
            orders = (range(len(args)), [1, 0, *range(2, len(args))])
        else:  # one order: the binding may extend env itself
            env2 = self._bind_inputs(pn, inputs, range(len(args)), env, no)
            if env2 is not None and self._match_attrs(i, pn, node, env2, no):
                yield env2
            return
        for order in orders:
            env2 = self._bind_inputs(pn, inputs, order, dict(env), no)
            if env2 is not None and self._match_attrs(i, pn, node, env2, no):
                yield env2

    @staticmethod
    def _bind_inputs(pn: A.MatchNode, inputs, order, env: dict, no):
        """Binds pn's arguments to `inputs` in `order`, extending `env` (the caller's copy)."""
        for arg, slot in zip(pn.args, order):
            t = inputs[slot] if slot < len(inputs) else None
            if t is not None and is_empty(t):
                t = None
            if arg.name == "_":
                if t is None and not arg.optional:
                    no(0.3, f"input {slot} is missing")
                    return None
                continue
            if t is None:
                if not arg.optional:
                    no(0.3, f"input {slot} '{arg.name}' is missing")
                    return None
            elif arg.const and not is_const(t):
                no(0.3, f"input {slot} '{arg.name}' is not a constant")
                return None
            bound = env.get(arg.name, env)  # env itself: unbound
            if bound is not env and bound is not t:
                no(0.4, f"input {slot} is {show(t)}, not the bound value '{arg.name}'")
                return None
            env[arg.name] = t
        return env

    def _match_attrs(self, i: int, pn: A.MatchNode, node: gs.Node, env: dict, no) -> bool:
        mentioned = set()
        for item in pn.attrs:
            if item.key is None:
                continue
            mentioned.add(item.key)
            have = get_attr(node, item.key)
            if isinstance(item.value, A.Name):
                name = item.value.id
                if name in env and not compare("==", env[name], have):
                    no(0.5, f"attribute {item.key}={show(have)} != bound '{name}'")
                    return False
                env[name] = have
            else:
                want = self.literals[(i, item.key)]
                if have is None or not compare("==", have, want):
                    no(0.5, f"attribute {item.key}={show(have)} != {show(want)}")
                    return False
        for item in pn.attrs:
            if item.rest is not None:
                env[item.rest] = {k: v for k, v in node.attrs.items() if k not in mentioned}
        return True


def _quiet(depth: float, why: str) -> None:
    """Failure reasons when nobody traces: dropped (the f-strings that call it are cheap next to
    building a closure per candidate)."""


def plan_pattern(nodes: list[A.MatchNode]) -> list[Step] | int:
    """Order to find pattern nodes from the anchor; returns the index of an unreachable node."""
    produced = {o: i for i, n in enumerate(nodes) for o in n.outputs if o != "_"}
    last = len(nodes) - 1
    plan = [Step(last, "anchor")]
    done = {last}
    bound = {o for o in nodes[last].outputs} | {a.name for a in nodes[last].args}
    while len(done) < len(nodes):
        step = None
        # Prefer producers: an input of a matched node names the exact tensor to look at.
        for i in sorted(done):
            for a in nodes[i].args:
                j = produced.get(a.name)
                if j is not None and j not in done:
                    step = Step(j, "producer", a.name)
                    break
            if step:
                break
        if step is None:
            for j, n in enumerate(nodes):
                if j in done:
                    continue
                src = next((a.name for a in n.args if a.name in bound and a.name != "_"), None)
                if src is not None:
                    step = Step(j, "consumer", src)
                    break
        if step is None:
            return next(j for j in range(len(nodes)) if j not in done)
        plan.append(step)
        done.add(step.index)
        bound |= set(nodes[step.index].outputs) | {a.name for a in nodes[step.index].args}
    return plan


def pattern_bindings(nodes: list[A.MatchNode]) -> dict[str, Any]:
    """name -> "value" | "values" | "attr" | "attrs" for everything a pattern binds."""
    out: dict[str, Any] = {}
    for n in nodes:
        for o in n.outputs:
            out[o] = "value"
        for a in n.args:
            out[a.name] = "values" if a.rest else "value"
        for it in n.attrs:
            if it.rest is not None:
                out[it.rest] = "attrs"
            elif isinstance(it.value, A.Name):
                out[it.value.id] = "attr"
    out.pop("_", None)
    return out
