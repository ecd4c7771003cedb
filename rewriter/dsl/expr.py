"""Interpreter for `where:` expressions and rewrite attribute values (never eval/exec)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from . import ast as A
from .facts import FactError, Facts
from .tensors import const_value, dtype_name, shape_of

#: builtins of `where:` / rewrite expressions: name -> (min args, max args or None, kinds, meaning)
BUILTINS = {
    "rank": (1, 1, ("value",), "number of dimensions of a value"),
    "shape": (1, 1, ("value",), "static shape of a value, a list of ints"),
    "dtype": (1, 1, ("value",), 'numpy name of the element type ("float32")'),
    "uses": (1, 1, ("value",), "consumer input slots of a value, +1 if it is a graph output"),
    "is_const": (1, 1, ("any",), "the value is an initializer or a Constant node output"),
    "value": (1, 1, ("value",), "the numpy array of a constant"),
    "on_host": (1, 1, ("any",), "the reason the producer of a value is pinned to the host, or None"),
    "consumers": (1, 1, ("value",), "op types of the nodes that read a value, sorted"),
    "producer": (1, 1, ("value",), "op type of the node that computes a value, None for inputs and constants"),
    "len": (1, 1, ("any",), "length of a list"),
    "abs": (1, 1, ("any",), "absolute value (of each item of a list)"),
    "min": (1, None, None, "smallest argument, or smallest item of one list"),
    "max": (1, None, None, "largest argument, or largest item of one list"),
    "all": (1, 1, ("any",), "every item is true"),
    "any": (1, 1, ("any",), "some item is true"),
    "prod": (1, 1, ("any",), "product of the items"),
    "int": (1, 1, ("any",), "integer conversion"),
    "float": (1, 1, ("any",), "float conversion"),
    "range": (1, 3, None, "list of integers, as Python's range"),
}
#: names every rule may read: `target` (the read-only target facts)
RESERVED = {"target"}


class EvalError(Exception):
    """An expression could not be evaluated (unknown shape, bad index...): the clause fails."""


def _tensor_arg(v):
    """Helpers see constants as numpy arrays; other values pass through."""
    if isinstance(v, gs.Tensor):
        c = const_value(v)
        return c if c is not None else v
    return v


def _need_tensor(fn: str, v):
    if not isinstance(v, gs.Tensor):
        raise EvalError(f"{fn}() expects a tensor, got {_show(v)}")
    return v


def _shape(v):
    s = shape_of(_need_tensor("shape", v))
    if s is None or any(not isinstance(d, (int, np.integer)) for d in s):
        raise EvalError(f"shape of {v.name!r} is not known")
    return [int(d) for d in s]


def _value(v):
    c = const_value(_need_tensor("value", v))
    if c is None:
        raise EvalError(f"{v.name!r} is not a constant")
    return c


def _on_host(v):
    from rewriter.ir.annotations import host_reason  # the annotation placement reads

    if v is None:
        return None
    _need_tensor("on_host", v)
    return host_reason(v.inputs[0]) if v.inputs else None


def _consumers(v):
    _need_tensor("consumers", v)
    return sorted(n.op for n in v.outputs)


class Evaluator:
    """Evaluates expressions against captures. `uses` counts consumers (+1 for graph outputs).
    `target` is the read-only view of the target (rewriter.dsl.facts), or None."""

    def __init__(self, helpers: dict[str, Callable], graph_outputs: set[int] | None = None, target=None):
        self.helpers = helpers
        self.graph_outputs = graph_outputs or set()
        self.target = target if target is None or isinstance(target, Facts) else Facts(target)
        self.builtins: dict[str, Callable] = {
            "rank": lambda v: len(_shape(v)),
            "shape": _shape,
            "dtype": lambda v: dtype_name(_need_tensor("dtype", v)),
            "uses": self.uses,
            "is_const": lambda v: v is not None and const_value(v) is not None,
            "value": _value,
            "len": lambda v: len(v),
            "abs": lambda v: abs(v) if not isinstance(v, list) else [abs(x) for x in v],
            "min": lambda *v: min(v[0]) if len(v) == 1 else min(v),
            "max": lambda *v: max(v[0]) if len(v) == 1 else max(v),
            "all": lambda v: bool(np.all(v)),
            "any": lambda v: bool(np.any(v)),
            "prod": lambda v: _py(np.prod(v)),
            "int": int,
            "float": float,
            "range": lambda *a: list(range(*(int(x) for x in a))),
            "on_host": _on_host,
            "consumers": _consumers,
            "producer": lambda v: _need_tensor("producer", v).inputs[0].op if v.inputs else None,
        }
        self._compiled: dict[int, tuple] = {}  # id(expression) -> (expression, its function)

    def uses(self, v) -> int:
        _need_tensor("uses", v)
        return len(v.outputs) + (1 if id(v) in self.graph_outputs else 0)

    def known(self, fn: str) -> bool:
        return fn in self.builtins or fn in self.helpers

    def eval(self, e: A.Expr, env: dict[str, Any]):
        """The interpreter (subclasses refine it node by node). `function(e)` is the same answer
        compiled once (rewriter.dsl.closures); both share the methods below for each node kind."""
        # dispatch on the exact node class, commonest first (no class derives from another)
        t = type(e)
        if t is A.Bin:
            op = e.op
            if op == "and":
                return truth(self.eval(e.left, env)) and truth(self.eval(e.right, env))
            if op == "or":
                return truth(self.eval(e.left, env)) or truth(self.eval(e.right, env))
            left, right = self.eval(e.left, env), self.eval(e.right, env)
            if op in _CMP:
                return compare(op, left, right)
            if op == "in":
                return contains(left, right)
            return _arith(op, left, right, e)
        if t is A.Lit:
            return e.value
        if t is A.Name:
            try:
                return env[e.id]
            except KeyError:
                return self.unbound(e.id)
        if t is A.Call:
            return self.call(e, [self.eval(x, env) for x in e.args])
        if t is A.ListE:
            return [self.eval(x, env) for x in e.items]
        if t is A.Index:
            return self.index_value(e, self.eval(e.obj, env), self.eval(e.index, env))
        if t is A.Attr:
            return self.attr_value(e, self.eval(e.obj, env))
        if t is A.ListComp:
            items = self.iterate(e, self.eval(e.seq, env))
            return [self.eval(e.item, {**env, e.var: item}) for item in items]
        if t is A.Spread:
            raise EvalError(f"{e.text}: '...' spreads only into the inputs of a rewrite op")
        if t is A.Slice:
            obj = self.eval(e.obj, env)
            lo = None if e.lo is None else int(self.eval(e.lo, env))
            hi = None if e.hi is None else int(self.eval(e.hi, env))
            return self.slice_value(e, obj, lo, hi)
        if t is A.Unary:
            x = self.eval(e.x, env)
            if e.op == "not":
                return not truth(x)
            return _arith("-", 0, x, e)
        raise EvalError(f"cannot evaluate {e.text!r}")

    def function(self, e: A.Expr) -> Callable[[dict[str, Any]], Any]:
        """eval(e, captures) as a function of the captures, compiled once per expression (a subclass that
        refines eval gets eval itself)."""
        got = self._compiled.get(id(e))
        if got is None:
            if type(self).eval is Evaluator.eval:
                from .closures import compile_expr

                fn = compile_expr(e, self)
            else:
                fn = lambda env, e=e: self.eval(e, env)  # noqa: E731
            got = self._compiled[id(e)] = (e, fn)  # e kept alive: its id stays its own
        return got[1]

    # -- one method per node kind that needs more than its children's values
    def unbound(self, name: str):
        """A name the captures do not bind: `target`, or an error."""
        if name == "target":
            if self.target is None:
                raise EvalError("no target is loaded (target facts are unknown)")
            return self.target
        raise EvalError(f"{name!r} is not bound")

    def call(self, e: A.Call, args: list):
        fn = self.builtins.get(e.func)
        if fn is None:
            if e.func not in self.helpers:
                raise EvalError(f"unknown function {e.func!r}")
            fn, args = self.helpers[e.func], [_tensor_arg(a) for a in args]
        try:
            return _py(fn(*args))
        except EvalError:
            raise
        except Exception as ex:  # a helper or builtin rejected its arguments
            raise EvalError(f"{e.text}: {type(ex).__name__}: {ex}") from ex

    @staticmethod
    def attr_value(e: A.Attr, obj):
        if not isinstance(obj, Facts):
            raise EvalError(f"{e.text}: only target facts have fields, not {_show(obj)}")
        try:
            return obj.get(e.name)
        except FactError as ex:
            raise EvalError(str(ex)) from None

    @staticmethod
    def index_value(e: A.Index, obj, i):
        if isinstance(obj, dict):  # a `...attrs` capture: missing keys read as None
            return obj.get(i)
        if isinstance(obj, Facts):  # target.ops[U]
            try:
                return obj.get(str(i))
            except FactError as ex:
                raise EvalError(str(ex)) from None
        try:
            return _py(obj[int(i)])
        except (IndexError, TypeError, ValueError) as ex:
            raise EvalError(f"{e.text}: {ex}") from ex

    @staticmethod
    def iterate(e: A.ListComp, seq) -> list:
        try:
            return list(seq)
        except TypeError:
            raise EvalError(f"{e.seq.text}: not a list: {_show(seq)}") from None

    @staticmethod
    def slice_value(e: A.Slice, obj, lo, hi):
        try:
            return _py(obj[lo:hi])
        except TypeError as ex:
            raise EvalError(f"{e.text}: {ex}") from ex


def _py(v):
    """numpy scalars -> python; tuples -> lists; 0-d arrays -> scalars."""
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return v.item()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return list(v)
    return v


def truth(v) -> bool:
    if isinstance(v, np.ndarray):
        return bool(np.all(v))
    return bool(v)


_CMP = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_EXACT = frozenset({int, str, bool})  # compared as Python compares them
_EXACT_OR_NONE = _EXACT | {type(None)}
_ARITH = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
}


def _scalar_eq(a, b) -> bool:
    if a is None or b is None or isinstance(a, gs.Tensor) or isinstance(b, gs.Tensor):
        return a is b  # gs tensors compare by name; None checks need identity
    # Float attributes are stored as float32: compare with float32 precision.
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    return a == b


def compare(op: str, a, b) -> bool:
    """Lists compare elementwise (== needs equal length and all equal; < etc. hold for all);
    a list against a scalar compares every element; arrays compare with broadcasting."""
    ta, tb = type(a), type(b)
    if ta is tb and ta in _EXACT:  # ints, strings, bools: no tolerance, no numpy
        return _CMP[op](a, b)
    if op in ("==", "!=") and (a is None or b is None) and ta in _EXACT_OR_NONE and tb in _EXACT_OR_NONE:
        return (a is b) == (op == "==")  # `on_host(v) == None`
    if ta is np.ndarray and tb is list and a.dtype.kind in "iu" and a.shape == (len(b),) and op in ("==", "!="):
        if all(type(x) is int for x in b):  # `value(axes) == [2]`: exact, as numpy's elementwise ==
            return (a.tolist() == b) == (op == "==")
    a, b = _py(a), _py(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        try:
            if op in ("==", "!="):
                eq = (
                    bool(np.all(np.isclose(x, y, rtol=1e-6, atol=0.0)))
                    if x.dtype.kind == "f" or y.dtype.kind == "f"
                    else bool(np.all(x == y))
                )
                return eq if op == "==" else not eq
            return bool(np.all(_CMP[op](x, y)))
        except (ValueError, TypeError):
            return op == "!="
    la, lb = isinstance(a, list), isinstance(b, list)
    if la or lb:
        if la and lb and len(a) != len(b):
            return op == "!="
        xs = a if la else [a] * len(b)
        ys = b if lb else [b] * len(a)
        if op in ("==", "!="):
            eq = all(compare("==", x, y) for x, y in zip(xs, ys))
            return eq if op == "==" else not eq
        return all(compare(op, x, y) for x, y in zip(xs, ys))
    if op == "==":
        return _scalar_eq(a, b)
    if op == "!=":
        return not _scalar_eq(a, b)
    if a is None or b is None:
        return False
    try:
        return bool(_CMP[op](a, b))
    except TypeError as ex:
        raise EvalError(f"cannot compare {_show(a)} {op} {_show(b)}") from ex


def contains(item, seq) -> bool:
    """`item in seq` with the DSL's equality (lists elementwise, floats at float32 precision)."""
    if isinstance(seq, Facts):
        return item in seq
    if isinstance(seq, str):
        return isinstance(item, str) and item in seq
    try:
        items = list(_py(seq)) if not isinstance(seq, np.ndarray) else seq.tolist()
    except TypeError as ex:
        raise EvalError(f"'in' needs a list, got {_show(seq)}") from ex
    return any(compare("==", item, x) for x in items)


def _arith(op: str, a, b, e: A.Expr):
    a, b = _py(a), _py(b)
    if isinstance(a, list) and isinstance(b, list) and op == "+":
        return a + b  # list concatenation, handy for pads/shapes
    try:
        if isinstance(a, list) or isinstance(b, list):
            return _py(_ARITH[op](np.asarray(a), np.asarray(b)).tolist())
        return _py(_ARITH[op](a, b))
    except (TypeError, ZeroDivisionError, ValueError) as ex:
        raise EvalError(f"{e.text}: {ex}") from ex


def _show(v) -> str:
    if isinstance(v, gs.Tensor):
        return f"tensor {v.name!r}"
    if isinstance(v, np.ndarray):
        return f"array{list(v.shape)}" if v.size > 8 else _short(v.tolist())
    return _short(v)


def _short(v) -> str:
    """repr, with floats that are float32 values (ONNX attributes, float32 constants) written as the
    shortest text that reads back to them: alpha=0.1, not 0.10000000149011612."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and np.isfinite(v) and float(np.float32(v)) == v:
        return str(np.float32(v))
    if isinstance(v, (list, tuple)):
        inner = ", ".join(_short(x) for x in v)
        return f"[{inner}]" if isinstance(v, list) else f"({inner}{',' if len(v) == 1 else ''})"
    return repr(v)


show = _show
