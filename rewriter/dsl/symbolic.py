"""Real-number semantics of ONNX ops on numpy object arrays of z3 terms, for the prover.

A tensor is a numpy array: dtype=object holding z3 real terms (or Python numbers) for float data,
an integer array for index data (axes, shapes, pads), which is always concrete. Covered exactly:
Relu, LeakyRelu, PRelu, Clip, Neg, Abs, Identity, Dropout, Add, Sub, Mul, Div, Max, Min, Sum,
Mean, BatchNormalization, Conv, ConvTranspose, Gemm, MatMul, AveragePool, MaxPool, the global
pools, ReduceMean / ReduceSum, and the index maps Squeeze, Unsqueeze, Transpose, Reshape, Flatten,
Concat, Slice, Pad. Other elementwise ops (Sigmoid, Tanh, Exp, Erf, ...) are uninterpreted
functions: a proof that holds for every function holds for them; a counter-example that relies on
one is inconclusive. Square roots and reciprocals of symbols are fresh reals tied to their
argument (r >= 0, r * r == a; r * a == 1), so identities stay polynomial. Anything else raises
NotEncodable.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import math
from fractions import Fraction

import numpy as np
import z3


class NotEncodable(Exception):
    """The op, attribute or helper is outside the fragment the prover encodes."""


_CURRENT: contextvars.ContextVar = contextvars.ContextVar("symbolic_context")

# elementwise ops whose value at x depends only on x (and attributes): uninterpreted functions
UNINTERPRETED = {
    "Sigmoid",
    "Tanh",
    "Exp",
    "Log",
    "Sqrt",
    "Erf",
    "Softplus",
    "Softsign",
    "HardSigmoid",
    "HardSwish",
    "Elu",
    "Selu",
    "Celu",
    "Gelu",
    "Mish",
    "Sin",
    "Cos",
    "Tan",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Reciprocal",
    "ThresholdedRelu",
    "Atan",
    "Asin",
    "Acos",
    "Sinh",
    "Cosh",
    "Asinh",
    "Acosh",
    "Atanh",
    "Shrink",
}


class SymContext:
    """Fresh symbols and the side conditions (domains, square roots) of one proof attempt."""

    def __init__(self):
        self.constraints: list = []
        self._roots: dict[int, object] = {}
        self._inverses: dict[int, object] = {}
        self._functions: dict = {}
        self.used_uninterpreted = False
        self._k = itertools.count()

    @contextlib.contextmanager
    def active(self):
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    def fresh(self, base: str):
        return z3.Real(f"{base}!{next(self._k)}")

    def array(self, name: str, shape) -> np.ndarray:
        out = np.empty(tuple(shape), dtype=object)
        for idx in np.ndindex(*out.shape):
            out[idx] = z3.Real(f"{name}[{','.join(map(str, idx))}]" if idx else name)
        return out

    def sqrt(self, a):
        a = as_term(a)
        if z3.is_rational_value(a):
            v = Fraction(a.as_fraction())
            r = math.isqrt(v.numerator), math.isqrt(v.denominator)
            if v >= 0 and r[0] ** 2 == v.numerator and r[1] ** 2 == v.denominator:
                return z3.RealVal(Fraction(*r))
        key = a.get_id()
        if key not in self._roots:
            r = self.fresh("sqrt")
            self.constraints += [a >= 0, r >= 0, r * r == a]
            self._roots[key] = r
        return self._roots[key]

    def sqrt_array(self, a: np.ndarray) -> np.ndarray:
        return np.frompyfunc(self.sqrt, 1, 1)(a).astype(object)

    def inverse(self, a):
        """1 / a as a fresh real: r * a == 1 (a != 0 follows)."""
        key = a.get_id()
        if key not in self._inverses:
            r = self.fresh("inv")
            self.constraints.append(r * a == 1)
            self._inverses[key] = r
        return self._inverses[key]

    def function(self, op: str, attrs: dict, arity: int):
        key = (op, tuple(sorted((k, repr(v)) for k, v in attrs.items())), arity)
        if key not in self._functions:
            name = f"{op}{len(self._functions)}"
            self._functions[key] = z3.Function(name, *([z3.RealSort()] * (arity + 1)))
        self.used_uninterpreted = True
        return self._functions[key]


def current() -> SymContext:
    try:
        return _CURRENT.get()
    except LookupError:
        raise NotEncodable("symbolic arithmetic outside a proof") from None


def as_term(v):
    if isinstance(v, z3.ExprRef):
        return v
    if isinstance(v, (bool, np.bool_)):
        raise NotEncodable("a boolean where a number is expected")
    if isinstance(v, (int, np.integer)):
        return z3.RealVal(int(v))
    return z3.RealVal(float(v))  # as z3 coerces a Python float in `term + 0.1`: the same term


def exact(a) -> np.ndarray:
    """A float array as an object array of exact rationals (the float's own value)."""
    a = np.asarray(a)
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(*a.shape):
        v = float(a[idx])
        if not math.isfinite(v):
            raise NotEncodable("a constant is not finite")
        out[idx] = z3.RealVal(Fraction(v))
    return out


def conjunction(items) -> object:
    items = [b for b in items if not (isinstance(b, (bool, np.bool_)) and b)]
    if any(isinstance(b, (bool, np.bool_)) and not b for b in items):
        return False
    return z3.And(*items) if items else True


def ew(f, *arrays) -> np.ndarray:
    """Elementwise f with numpy broadcasting; always an object array."""
    return np.asarray(np.frompyfunc(f, len(arrays), 1)(*arrays), dtype=object)


def _max(a, b):
    a, b = as_term(a), as_term(b)
    return z3.If(a >= b, a, b)


def _min(a, b):
    a, b = as_term(a), as_term(b)
    return z3.If(a <= b, a, b)


def _div(a, b):
    b = as_term(b)
    if z3.is_rational_value(b):
        if b.as_fraction() == 0:
            raise NotEncodable("division by a zero constant")
        return as_term(a) * z3.RealVal(1 / Fraction(b.as_fraction()))
    return as_term(a) * current().inverse(b)


def divide(a, b) -> np.ndarray:
    return ew(_div, a, b)


# ---------------------------------------------------------------- ops
def _attr(attrs: dict, key: str, default=None):
    v = attrs.get(key, default)
    return v.decode() if isinstance(v, bytes) else v


def _ints(a) -> list[int]:
    if a is None:
        return []
    a = np.asarray(a)
    if a.dtype == object:
        raise NotEncodable("an index input (axes, shape, pads) is symbolic")
    return [int(v) for v in a.reshape(-1)]


def _sum(values):
    out = values[0]
    for v in values[1:]:
        out = out + v
    return out


def _reduce(x: np.ndarray, axes, keepdims: bool, mean: bool):
    axes = sorted({a % x.ndim for a in axes}) if axes else list(range(x.ndim))
    out = np.sum(x, axis=tuple(axes), keepdims=keepdims, dtype=object)
    if mean:
        count = int(np.prod([x.shape[a] for a in axes]))
        out = ew(lambda v: as_term(v) * z3.RealVal(Fraction(1, count)), out)
    return np.asarray(out, dtype=object)


def _window_pool(x, attrs, kind: str):
    k = list(_attr(attrs, "kernel_shape"))
    n = len(k)
    s = list(_attr(attrs, "strides", None) or [1] * n)
    d = list(_attr(attrs, "dilations", None) or [1] * n)
    p = list(_attr(attrs, "pads", None) or [0] * 2 * n)
    if _attr(attrs, "auto_pad", "NOTSET") != "NOTSET":
        raise NotEncodable("auto_pad")
    ceil = int(_attr(attrs, "ceil_mode", 0) or 0)
    include_pad = int(_attr(attrs, "count_include_pad", 0) or 0)
    spatial = x.shape[2:]
    outs = []
    for i in range(n):
        span = spatial[i] + p[i] + p[i + n] - d[i] * (k[i] - 1) - 1
        o = (span + s[i] - 1) // s[i] + 1 if ceil else span // s[i] + 1
        if ceil and (o - 1) * s[i] >= spatial[i] + p[i]:
            o -= 1  # the last window must start inside the input or the begin pad
        outs.append(o)
    y = np.empty(x.shape[:2] + tuple(outs), dtype=object)
    for nc in np.ndindex(*x.shape[:2]):
        for pos in np.ndindex(*outs):
            vals, padded = [], 0
            for kk in np.ndindex(*k):
                idx = [pos[i] * s[i] - p[i] + kk[i] * d[i] for i in range(n)]
                inside = all(0 <= idx[i] < spatial[i] for i in range(n))
                if inside:
                    vals.append(x[nc + tuple(idx)])
                elif all(idx[i] < spatial[i] + p[i + n] for i in range(n)):
                    padded += 1  # a position in the explicit pads (not beyond, as ceil_mode adds)
            if kind == "max":
                out = vals[0]
                for v in vals[1:]:
                    out = _max(out, v)
            else:
                count = len(vals) + (padded if include_pad else 0)
                out = as_term(_sum(vals)) * z3.RealVal(Fraction(1, count))
            y[nc + pos] = out
    return y


def _conv_attrs(w, attrs):
    """(kernel, spatial rank, group, strides, dilations, pads) of a Conv / ConvTranspose."""
    if _attr(attrs, "auto_pad", "NOTSET") != "NOTSET":
        raise NotEncodable("auto_pad")
    k = list(w.shape[2:])
    n = len(k)
    return (
        k,
        n,
        int(_attr(attrs, "group", 1) or 1),
        list(_attr(attrs, "strides", None) or [1] * n),
        list(_attr(attrs, "dilations", None) or [1] * n),
        list(_attr(attrs, "pads", None) or [0] * 2 * n),
    )


def _conv(x, w, b, attrs):
    k, n, g, s, d, p = _conv_attrs(w, attrs)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p[i], p[i + n]) for i in range(n)], constant_values=0)
    outs = [(xp.shape[2 + i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(n)]
    M, cin = w.shape[0], w.shape[1]
    y = np.empty((x.shape[0], M, *outs), dtype=object)
    for o in range(M):
        gi = o // (M // g)
        acc = np.zeros((x.shape[0], *outs), dtype=object)
        for ci in range(cin):
            c = gi * cin + ci
            for kk in np.ndindex(*k):
                sl = tuple(slice(kk[i] * d[i], kk[i] * d[i] + s[i] * (outs[i] - 1) + 1, s[i]) for i in range(n))
                acc = acc + xp[(slice(None), c) + sl] * w[(o, ci) + kk]
        y[:, o] = acc + (b[o] if b is not None else 0)
    return y


def _conv_transpose(x, w, b, attrs):
    if _attr(attrs, "output_shape"):
        raise NotEncodable("ConvTranspose with output_shape")
    k, n, g, s, d, p = _conv_attrs(w, attrs)
    op = list(_attr(attrs, "output_padding", None) or [0] * n)
    C, mg = x.shape[1], w.shape[1]
    full = [s[i] * (x.shape[2 + i] - 1) + d[i] * (k[i] - 1) + 1 + op[i] for i in range(n)]
    y = np.zeros((x.shape[0], mg * g, *full), dtype=object)
    for c in range(C):
        gi = c // (C // g)
        for mo in range(mg):
            for kk in np.ndindex(*k):
                sl = tuple(slice(kk[i] * d[i], kk[i] * d[i] + s[i] * (x.shape[2 + i] - 1) + 1, s[i]) for i in range(n))
                idx = (slice(None), gi * mg + mo) + sl
                y[idx] = y[idx] + x[:, c] * w[(c, mo) + kk]
    crop = (slice(None), slice(None)) + tuple(slice(p[i], full[i] - p[i + n]) for i in range(n))
    y = y[crop]
    if b is not None:
        y = y + np.asarray(b, dtype=object).reshape((1, -1) + (1,) * n)
    return np.asarray(y, dtype=object)


def _slice(x, starts, ends, axes=None, steps=None):
    starts, ends = _ints(starts), _ints(ends)
    axes = _ints(axes) if axes is not None else list(range(len(starts)))
    steps = _ints(steps) if steps is not None else [1] * len(starts)
    idx = [slice(None)] * x.ndim
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        dim = x.shape[ax]
        en = max(-dim - 1, min(en, dim)) if sp < 0 else en
        idx[ax % x.ndim] = slice(st, None if (sp < 0 and en < -dim) else en, sp)
    return x[tuple(idx)]


def _reshape(x, shape, allowzero):
    shape = _ints(shape)
    out = [x.shape[i] if v == 0 and not allowzero else v for i, v in enumerate(shape)]
    return x.reshape(out)


def evaluate(op: str, ins: list, attrs: dict, n_out: int = 1) -> list:
    """Outputs of `op` on symbolic inputs `ins` (None for a missing optional input)."""
    x = ins[0] if ins else None
    get = lambda i: ins[i] if i < len(ins) else None  # noqa: E731
    if op in ("Identity", "Dropout"):
        return [x] + [None] * (n_out - 1)
    if n_out > 1 and op != "Split":
        raise NotEncodable(f"{op} with {n_out} outputs")
    if op == "Relu":
        out = ew(lambda v: _max(v, 0), x)
    elif op == "LeakyRelu":
        a = as_term(float(_attr(attrs, "alpha", 0.01)))
        out = ew(lambda v: z3.If(as_term(v) >= 0, as_term(v), a * as_term(v)), x)
    elif op == "PRelu":
        out = ew(lambda v, sl: z3.If(as_term(v) < 0, as_term(sl) * as_term(v), as_term(v)), x, get(1))
    elif op == "Clip":
        out = x
        if get(1) is not None:
            out = ew(_max, out, get(1))
        if get(2) is not None:
            out = ew(_min, out, get(2))
    elif op == "Neg":
        out = ew(lambda v: -as_term(v), x)
    elif op == "Abs":
        out = ew(lambda v: z3.If(as_term(v) >= 0, as_term(v), -as_term(v)), x)
    elif op in ("Add", "Sub", "Mul"):
        f = {
            "Add": lambda a, b: as_term(a) + as_term(b),
            "Sub": lambda a, b: as_term(a) - as_term(b),
            "Mul": lambda a, b: as_term(a) * as_term(b),
        }[op]
        out = ew(f, x, get(1))
    elif op == "Div":
        out = divide(x, get(1))
    elif op in ("Max", "Min", "Sum", "Mean"):
        f = {"Max": _max, "Min": _min}.get(op, lambda a, b: as_term(a) + as_term(b))
        out = ins[0]
        for other in ins[1:]:
            out = ew(f, out, other)
        if op == "Mean":
            out = ew(lambda v: as_term(v) * z3.RealVal(Fraction(1, len(ins))), out)
    elif op == "Pow" and get(1) is not None and np.asarray(get(1)).dtype != object:
        e = np.asarray(get(1))
        if not np.all(e == np.round(e)) or np.any(e < 0) or np.any(e > 8):
            raise NotEncodable("Pow with a non-integer exponent")
        out = ew(lambda v, k: as_term(v) ** int(k) if int(k) else z3.RealVal(1), x, e)
    elif op == "BatchNormalization":
        if int(_attr(attrs, "training_mode", 0) or 0):
            raise NotEncodable("BatchNormalization in training mode")
        shape = (1, -1) + (1,) * (x.ndim - 2)
        eps = float(_attr(attrs, "epsilon", 1e-5))
        r = current().sqrt_array(np.asarray(get(4), dtype=object) + as_term(eps))
        scale = divide(np.asarray(get(1), dtype=object), r)
        out = (x - np.asarray(get(3), dtype=object).reshape(shape)) * scale.reshape(shape) + np.asarray(
            get(2), dtype=object
        ).reshape(shape)
    elif op == "Conv":
        out = _conv(x, get(1), get(2), attrs)
    elif op == "ConvTranspose":
        out = _conv_transpose(x, get(1), get(2), attrs)
    elif op in ("MaxPool", "AveragePool"):
        if op == "MaxPool" and int(_attr(attrs, "storage_order", 0) or 0):
            raise NotEncodable("MaxPool storage_order")
        out = _window_pool(x, attrs, "max" if op == "MaxPool" else "avg")
    elif op == "GlobalAveragePool":
        out = _reduce(x, list(range(2, x.ndim)), True, True)
    elif op == "GlobalMaxPool":
        out = _window_pool(x, {"kernel_shape": list(x.shape[2:])}, "max")
    elif op in ("ReduceMean", "ReduceSum"):
        axes = _ints(get(1)) if op == "ReduceSum" and get(1) is not None else _attr(attrs, "axes")
        if not axes and op == "ReduceSum" and int(_attr(attrs, "noop_with_empty_axes", 0) or 0):
            return [x]
        out = _reduce(x, list(axes or []), bool(int(_attr(attrs, "keepdims", 1))), op == "ReduceMean")
    elif op in ("Gemm", "MatMul"):
        a, b = x, get(1)
        if op == "Gemm":
            a = a.T if int(_attr(attrs, "transA", 0) or 0) else a
            b = b.T if int(_attr(attrs, "transB", 0) or 0) else b
        out = np.asarray(np.matmul(a, b), dtype=object)
        if op == "Gemm":
            alpha, beta = float(_attr(attrs, "alpha", 1.0)), float(_attr(attrs, "beta", 1.0))
            if alpha != 1.0:
                out = out * as_term(alpha)
            if get(2) is not None:
                out = out + np.asarray(get(2), dtype=object) * as_term(beta)
    elif op == "Squeeze":
        axes = _ints(get(1)) if get(1) is not None else [i for i, d in enumerate(x.shape) if d == 1]
        out = np.squeeze(x, axis=tuple(a % x.ndim for a in axes))
    elif op == "Unsqueeze":
        r = x.ndim + len(_ints(get(1)))
        out = np.expand_dims(x, tuple(sorted(a % r for a in _ints(get(1)))))
    elif op == "Transpose":
        perm = _attr(attrs, "perm") or list(reversed(range(x.ndim)))
        out = np.transpose(x, perm)
    elif op == "Reshape":
        out = _reshape(x, get(1), int(_attr(attrs, "allowzero", 0) or 0))
    elif op == "Flatten":
        ax = int(_attr(attrs, "axis", 1)) % (x.ndim + 1) if x.ndim else 0
        out = x.reshape(int(np.prod(x.shape[:ax])), -1)
    elif op == "Concat":
        out = np.concatenate(
            [np.asarray(i, dtype=object) for i in ins if i is not None], axis=int(_attr(attrs, "axis"))
        )
    elif op == "Slice":
        out = _slice(x, get(1), get(2), get(3), get(4))
    elif op == "Pad":
        mode = _attr(attrs, "mode", "constant")
        pads = _ints(get(1))
        if get(3) is not None:
            raise NotEncodable("Pad with axes")
        r = x.ndim
        width = [(pads[i], pads[i + r]) for i in range(r)]
        if any(a < 0 or b < 0 for a, b in width):
            raise NotEncodable("negative pads")
        if mode == "constant":
            cv = get(2)
            value = as_term(np.asarray(cv).reshape(-1)[0]) if cv is not None else 0
            out = np.pad(x, width, mode="constant", constant_values=value)
        elif mode in ("reflect", "edge"):
            out = np.pad(x, width, mode=mode)
        else:
            raise NotEncodable(f"Pad mode {mode}")
    elif op in UNINTERPRETED:
        f = current().function(op, attrs, 1)
        out = ew(lambda v: f(as_term(v)), x)
    elif op == "Pow":
        f = current().function("Pow", attrs, 2)
        out = ew(lambda a, b: f(as_term(a), as_term(b)), x, get(1))
    else:
        raise NotEncodable(f"op {op} is outside the prover's fragment")
    return [np.asarray(out, dtype=object)]
