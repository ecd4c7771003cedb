"""`where:` and rewrite expressions compiled once into Python closures (never eval/exec).

The same language as Evaluator.eval, which stays the reference (and what subclasses such as the
prover's symbolic evaluator refine node by node): each syntax-tree node becomes a closure that
calls its children's closures directly, instead of dispatching on the node's class at every
evaluation. Where-clauses are evaluated for every candidate node of every rule, so this is the
matcher's inner loop. tests/dsl/test_closures.py holds the two to the same answers and errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import ast as A
from .expr import _CMP, EvalError, Evaluator, _arith, compare, contains, truth

Fn = Callable[[dict], Any]


def compile_expr(e: A.Expr, ev: Evaluator) -> Fn:
    """A function of the captures with ev.eval(e, captures)'s value, or its EvalError."""
    t = type(e)
    if t is A.Bin:
        return _bin(e, ev)
    if t is A.Lit:
        value = e.value
        return lambda env: value
    if t is A.Name:
        return _name(e, ev)
    if t is A.Call:
        return _call(e, ev)
    if t is A.ListE:
        items = [compile_expr(x, ev) for x in e.items]
        return lambda env: [f(env) for f in items]
    if t is A.Index:
        obj, index = compile_expr(e.obj, ev), compile_expr(e.index, ev)
        return lambda env: ev.index_value(e, obj(env), index(env))
    if t is A.Attr:
        obj = compile_expr(e.obj, ev)
        return lambda env: ev.attr_value(e, obj(env))
    if t is A.ListComp:
        return _listcomp(e, ev)
    if t is A.Slice:
        return _slice(e, ev)
    if t is A.Unary:
        x = compile_expr(e.x, ev)
        if e.op == "not":
            return lambda env: not truth(x(env))
        return lambda env: _arith("-", 0, x(env), e)
    return lambda env: ev.eval(e, env)  # Spread and anything else: the interpreter's answer (an error)


def _bin(e: A.Bin, ev: Evaluator) -> Fn:
    left, right, op = compile_expr(e.left, ev), compile_expr(e.right, ev), e.op
    if op == "and":
        return lambda env: truth(left(env)) and truth(right(env))
    if op == "or":
        return lambda env: truth(left(env)) or truth(right(env))
    if op in _CMP:
        return lambda env: compare(op, left(env), right(env))
    if op == "in":
        return lambda env: contains(left(env), right(env))
    return lambda env: _arith(op, left(env), right(env), e)


def _name(e: A.Name, ev: Evaluator) -> Fn:
    key = e.id

    def name(env):
        try:
            return env[key]
        except KeyError:
            return ev.unbound(key)

    return name


def _call(e: A.Call, ev: Evaluator) -> Fn:
    args = [compile_expr(x, ev) for x in e.args]
    if len(args) == 1:
        only = args[0]
        return lambda env: ev.call(e, [only(env)])
    return lambda env: ev.call(e, [f(env) for f in args])


def _listcomp(e: A.ListComp, ev: Evaluator) -> Fn:
    seq, item, var = compile_expr(e.seq, ev), compile_expr(e.item, ev), e.var

    def listcomp(env):
        items = ev.iterate(e, seq(env))
        return [item({**env, var: x}) for x in items]

    return listcomp


def _slice(e: A.Slice, ev: Evaluator) -> Fn:
    obj = compile_expr(e.obj, ev)
    lo = None if e.lo is None else compile_expr(e.lo, ev)
    hi = None if e.hi is None else compile_expr(e.hi, ev)

    def sliced(env):
        o = obj(env)
        a = None if lo is None else int(lo(env))
        b = None if hi is None else int(hi(env))
        return ev.slice_value(e, o, a, b)

    return sliced


__all__ = ["EvalError", "compile_expr"]
