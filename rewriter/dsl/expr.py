"""Interpreter for `where:` expressions and rewrite attribute values (never eval/exec)."""
from __future__ import annotations

import math
import operator
from typing import Any
from collections.abc import Callable

import numpy as np
import onnx_graphsurgeon as gs

from . import ast as A
from .tensors import const_value, dtype_name, shape_of


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


class Evaluator:
    """Evaluates expressions against captures. `uses` counts consumers (+1 for graph outputs)."""

    def __init__(self, helpers: dict[str, Callable], graph_outputs: set[int] | None = None):
        self.helpers = helpers
        self.graph_outputs = graph_outputs or set()
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
        }

    def uses(self, v) -> int:
        _need_tensor("uses", v)
        return len(v.outputs) + (1 if id(v) in self.graph_outputs else 0)

    def known(self, fn: str) -> bool:
        return fn in self.builtins or fn in self.helpers

    def eval(self, e: A.Expr, env: dict[str, Any]):
        if isinstance(e, A.Lit):
            return e.value
        if isinstance(e, A.Name):
            if e.id not in env:
                raise EvalError(f"{e.id!r} is not bound")
            return env[e.id]
        if isinstance(e, A.ListE):
            return [self.eval(x, env) for x in e.items]
        if isinstance(e, A.Call):
            args = [self.eval(x, env) for x in e.args]
            if e.func in self.builtins:
                fn = self.builtins[e.func]
            elif e.func in self.helpers:
                fn, args = self.helpers[e.func], [_tensor_arg(a) for a in args]
            else:
                raise EvalError(f"unknown function {e.func!r}")
            try:
                return _py(fn(*args))
            except EvalError:
                raise
            except Exception as ex:  # a helper or builtin rejected its arguments
                raise EvalError(f"{e.text}: {type(ex).__name__}: {ex}") from ex
        if isinstance(e, A.Index):
            obj, i = self.eval(e.obj, env), self.eval(e.index, env)
            if isinstance(obj, dict):  # a `...attrs` capture: missing keys read as None
                return obj.get(i)
            try:
                return _py(obj[int(i)])
            except (IndexError, TypeError, ValueError) as ex:
                raise EvalError(f"{e.text}: {ex}") from ex
        if isinstance(e, A.Slice):
            obj = self.eval(e.obj, env)
            lo = None if e.lo is None else int(self.eval(e.lo, env))
            hi = None if e.hi is None else int(self.eval(e.hi, env))
            try:
                return _py(obj[lo:hi])
            except TypeError as ex:
                raise EvalError(f"{e.text}: {ex}") from ex
        if isinstance(e, A.Unary):
            x = self.eval(e.x, env)
            if e.op == "not":
                return not truth(x)
            return _arith("-", 0, x, e)
        if isinstance(e, A.Bin):
            if e.op == "and":
                return truth(self.eval(e.left, env)) and truth(self.eval(e.right, env))
            if e.op == "or":
                return truth(self.eval(e.left, env)) or truth(self.eval(e.right, env))
            left, right = self.eval(e.left, env), self.eval(e.right, env)
            if e.op in _CMP:
                return compare(e.op, left, right)
            return _arith(e.op, left, right, e)
        raise EvalError(f"cannot evaluate {e.text!r}")


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


_CMP = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod}


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
    a, b = _py(a), _py(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        try:
            if op in ("==", "!="):
                eq = bool(np.all(np.isclose(x, y, rtol=1e-6, atol=0.0))) if x.dtype.kind == "f" \
                    or y.dtype.kind == "f" else bool(np.all(x == y))
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
        return f"array{list(v.shape)}" if v.size > 8 else repr(v.tolist())
    return repr(v)


show = _show
