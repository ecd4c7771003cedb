"""Necessary conditions of a rule that the driver checks per graph, not per candidate node.

A where-clause conjunct `on_host(v) == "R"` (or `"R" in [on_host(a), on_host(b)]`) holds only if
some node is pinned to the host with reason R. Until a node is, the rule cannot match anywhere, and
the driver skips it without searching (a graph without an FSQ quantizer never pays for the FSQ
rules' search at every Mul and Add)."""

from __future__ import annotations

from . import ast as A


def required_host_reasons(where: list[A.Expr], consts: dict) -> frozenset[str]:
    """Host reasons that must be present in the graph for the where-clauses to hold."""
    needed: set[str] = set()
    for clause in where:
        for c in _conjuncts(clause):
            reason = _required(c, consts)
            if reason is not None:
                needed.add(reason)
    return frozenset(needed)


def _conjuncts(e: A.Expr):
    if isinstance(e, A.Bin) and e.op == "and":
        yield from _conjuncts(e.left)
        yield from _conjuncts(e.right)
    else:
        yield e


def _is_on_host(e: A.Expr) -> bool:
    return isinstance(e, A.Call) and e.func == "on_host"


def _static_string(e: A.Expr, consts: dict) -> str | None:
    if isinstance(e, A.Lit) and isinstance(e.value, str):
        return e.value
    if isinstance(e, A.Name) and isinstance(consts.get(e.id), str):  # a file-level `let`
        return consts[e.id]
    return None


def _required(c: A.Expr, consts: dict) -> str | None:
    if not isinstance(c, A.Bin):
        return None
    if c.op == "==":
        for call, other in ((c.left, c.right), (c.right, c.left)):
            if _is_on_host(call):
                return _static_string(other, consts)
    if c.op == "in" and isinstance(c.right, A.ListE) and c.right.items and all(map(_is_on_host, c.right.items)):
        return _static_string(c.left, consts)
    return None
