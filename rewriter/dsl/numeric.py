"""Array arithmetic that helpers can share with the prover.

A helper written with these functions computes on numpy float arrays as usual, and on numpy object
arrays of symbolic reals (rewriter/dsl/symbolic.py) when the prover calls it, so one definition
serves both (register it with `symbolic=True`). Float math runs in float64 and is cast back to the
model's float type; symbolic math is exact.
"""

from __future__ import annotations

import numpy as np


def is_symbolic(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype == object


def f64(a):
    """`a` as float64 for exact-enough math (symbolic arrays pass through; None stays None)."""
    if a is None or is_symbolic(a):
        return a
    return np.asarray(a, np.float64)


def float_type(*arrays):
    """The float type of the first float array given (the model's), else float32."""
    for a in arrays:
        if a is not None and not is_symbolic(a) and np.asarray(a).dtype.kind == "f":
            return np.asarray(a).dtype
    return np.dtype(np.float32)


def cast(out, *like):
    """`out` in the float type of `like` (symbolic results stay symbolic)."""
    if is_symbolic(out) or any(is_symbolic(a) for a in like):
        return np.asarray(out, dtype=object)
    return np.asarray(out).astype(float_type(*like))


def sqrt(a):
    """Elementwise square root; a symbolic one is a fresh real r >= 0 with r * r == a."""
    if is_symbolic(a):
        from .symbolic import current

        return current().sqrt_array(a)
    return np.sqrt(a)


def zeros(shape, like=None):
    if is_symbolic(like):
        return np.zeros(shape, dtype=object)
    return np.zeros(shape)


def all_true(a, predicate) -> object:
    """`predicate` holds for every element: a bool, or for symbolic arrays a symbolic condition."""
    if is_symbolic(a):
        from .symbolic import conjunction

        return conjunction([predicate(v) for v in a.reshape(-1)])
    return bool(np.all(predicate(a)))


def div(a, b):
    """a / b; symbolically a * r with r * b == 1 (so identities stay polynomial)."""
    if is_symbolic(a) or is_symbolic(b):
        from .symbolic import divide

        return divide(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    return a / b
