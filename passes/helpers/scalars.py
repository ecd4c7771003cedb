"""Helpers for rules on single-value constants (Max(x, c) as Clip, Pow(x, 2) as a product...)."""

from __future__ import annotations

import numpy as np

from .registry import native_helper


@native_helper("is_single_value")
def is_single_value(c) -> bool:
    """The constant holds exactly one value (of any rank): it broadcasts like a scalar."""
    return np.asarray(c).size == 1


@native_helper("scalar_of")
def scalar_of(c):
    """The one value of a constant as a rank-0 tensor of its dtype (Clip takes rank-0 bounds)."""
    c = np.asarray(c)
    return c.reshape(())


@native_helper("squeeze_leading_ones")
def squeeze_leading_ones(c):
    """A constant without its leading size-1 axes ([1, C, 1] -> [C, 1]): numpy broadcasting against
    a tensor of at least the constant's rank gives the same result."""
    c = np.asarray(c)
    while c.ndim > 1 and c.shape[0] == 1:
        c = c[0]
    return np.ascontiguousarray(c)


@native_helper("scalar_value")
def scalar_value(c) -> float:
    """The one value of a constant as a Python float (an attribute such as epsilon)."""
    return float(np.asarray(c).ravel()[0])
