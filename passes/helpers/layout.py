"""Helpers for the rank-3 -> rank-4 (time on W) layout rules and constant reshaping."""

from __future__ import annotations

import numpy as np

from rewriter.dsl.numeric import all_true, cast, zeros

from .registry import native_helper


@native_helper("unsqueeze_axis", kinds=("const", "attr"), symbolic=True)
def unsqueeze_axis(w, axis: int):
    """Insert a size-1 axis into a constant (Conv1d weights [O, I, k] -> [O, I, 1, k])."""
    return np.expand_dims(np.asarray(w), int(axis))


@native_helper("swap_hw", kinds=("const",), symbolic=True)
def swap_hw(w):
    """A 2-D conv weight [..., kh, kw] as [..., kw, kh] (the kernel of the H<->W transposed op);
    a vector (a bias) stays as it is.

    None (the missing weight of a pool, which vertical.rw turns with the convs) stays None."""
    if w is None:
        return None
    w = np.asarray(w)
    return w if w.ndim < 2 else np.ascontiguousarray(np.swapaxes(w, -1, -2))


@native_helper("hw_swapped", kinds=("attr",), symbolic=True)
def hw_swapped(values):
    """A 2-D op's per-axis attribute with H and W exchanged: [h, w] -> [w, h], pads
    [h0, w0, h1, w1] -> [w0, h0, w1, h1]. None (attribute absent) stays None, which omits it."""
    if values is None:
        return None
    v = [int(x) for x in values]
    return [v[1], v[0]] if len(v) == 2 else [v[1], v[0], v[3], v[2]]


@native_helper("to_rank4_operand", kinds=("const", "attr"), symbolic=True)
def to_rank4_operand(c, other_rank: int = 3):
    """A constant broadcast against a rank-3 [N, C, T] tensor, reshaped for the rank-4
    [N, C, 1, T] form: right-aligned broadcasting means the new H axis sits just before the last
    axis when the constant spans T, and a per-channel [C, 1] constant gets [C, 1, 1]."""
    c = np.asarray(c)
    if c.ndim == 0:
        return c
    if c.ndim == 1:  # broadcast over T only: [T] stays [T] (aligned to W)
        return c
    full = c.reshape((1,) * (int(other_rank) - c.ndim) + c.shape)  # [N?, C, T]
    return np.expand_dims(full, full.ndim - 1)


@native_helper("axis_3_to_4", kinds=("any",), symbolic=True)
def axis_3_to_4(axes):
    """Map axes of a rank-3 [N, C, T] tensor to the rank-4 [N, C, 1, T] form. `None` (a reduce
    over all axes, no `axes` attribute) stays `None`, which omits the attribute in a rewrite."""
    if axes is None:
        return None
    single = np.ndim(axes) == 0
    out = [a + 3 if a < 0 else a for a in np.atleast_1d(np.asarray(axes)).tolist()]
    out = [a + 1 if a == 2 else a for a in out]
    return out[0] if single else np.asarray(out, np.int64)


@native_helper("pads_3_to_4", kinds=("const",), symbolic=True)
def pads_3_to_4(pads):
    """Pad's pads [n0, c0, t0, n1, c1, t1] -> [n0, c0, 0, t0, n1, c1, 0, t1]."""
    p = np.asarray(pads, np.int64).tolist()
    return np.asarray([p[0], p[1], 0, p[2], p[3], p[4], 0, p[5]], np.int64)


@native_helper("resize_3_to_4", kinds=("any",), symbolic=True)
def resize_3_to_4(values):
    """Resize's scales [n, c, t] (or sizes) -> [n, c, 1, t]: the H axis of the [N, C, 1, T] form
    keeps its size. None (the input not given) stays None."""
    if values is None:
        return None
    v = np.asarray(values)
    return np.concatenate([v[:2], np.ones(1, v.dtype), v[2:]])


@native_helper("is_identity_perm", kinds=("attr",), symbolic=True)
def is_identity_perm(perm) -> bool:
    """The permutation leaves every axis in place."""
    return list(perm) == list(range(len(perm)))


@native_helper("compose_perm", kinds=("attr", "attr"), symbolic=True)
def compose_perm(first, second):
    """Transpose(Transpose(x, first), second) == Transpose(x, compose_perm(first, second))."""
    return [int(first[i]) for i in second]


@native_helper("linear_weight_as_conv", kinds=("const", "attr"), symbolic=True)
def linear_weight_as_conv(w, rank: int):
    """MatMul's constant B [C, K] (x @ B over the last axis of a rank-`rank` tensor) as the weight
    [K, C, 1, ...] of the 1x1 conv that computes the same over axis 1 of the channels-first tensor."""
    w = np.asarray(w)
    return np.ascontiguousarray(w.T).reshape(w.shape[1], w.shape[0], *([1] * (int(rank) - 2)))


@native_helper("gemm_weight_as_conv", kinds=("const", "attr"), symbolic=True)
def gemm_weight_as_conv(w, trans_b: int):
    """Gemm B ([K, N], or [N, K] with transB) -> 1x1 conv weights [N, K, 1, 1]."""
    w = np.asarray(w)
    return linear_weight_as_conv(w.T if int(trans_b) else w, 4)


@native_helper("gemm_bias", kinds=("any", "const", "attr"), symbolic=True)
def gemm_bias(c, w, trans_b: int):
    """Gemm's C as a per-output bias [N] (C may be missing, a scalar, [N] or [1, N])."""
    w = np.asarray(w)
    n = w.shape[0 if int(trans_b) else 1]
    if c is None:
        return cast(zeros(n, w), w)
    return cast(np.broadcast_to(np.asarray(c).reshape(-1), (n,)).copy(), w)


@native_helper("is_row_bias", kinds=("any", "const", "attr"), symbolic=True)
def is_row_bias(c, w, trans_b: int) -> bool:
    """True when Gemm's C is missing or broadcasts along the rows (a scalar, [N], [1, N], [1, 1]),
    i.e. is one bias per output feature. A [M, N] or [M, 1] C differs per row and cannot become a
    per-channel bias (gemm_bias would fail or, for [M, 1] with M == N, silently transpose it)."""
    if c is None:
        return True
    c = np.asarray(c)
    n = np.asarray(w).shape[0 if int(trans_b) else 1]
    if c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
        return False
    return c.ndim == 0 or c.shape[-1] in (1, n)


@native_helper("all_zero", kinds=("const",), symbolic=True)
def all_zero(values) -> bool:
    """Every element is 0."""
    return all_true(np.asarray(values), lambda v: v == 0)


@native_helper("any_zero", kinds=("const",))
def any_zero(values) -> bool:
    """Some element is 0 (e.g. a Reshape shape that copies a dimension)."""
    return bool(np.any(np.asarray(values) == 0))


@native_helper("reduce_axes_3_to_4", kinds=("any",), symbolic=True)
def reduce_axes_3_to_4(axes):
    """Reduce axes of [N, C, T] for [N, C, 1, T] (keepdims): the mapped axes plus the size-1 H axis.
    Reducing over H changes nothing, but keeps the axes contiguous: onnxruntime reduces [1, 3]
    through a slower, less accurate path than [1, 2, 3] (1e-5 vs 3e-6 relative on 2M values)."""
    if axes is None:
        return None
    mapped = np.atleast_1d(axis_3_to_4(axes)).tolist()
    return np.asarray(sorted(set(mapped) | {2}), np.int64)


@native_helper("with_h_axis", kinds=("attr", "attr"), symbolic=True)
def with_h_axis(values, fill: int):
    """A 1-D op's per-axis attribute for the rank-4 [N, C, 1, T] form: `fill` (the size-1 H axis'
    entry) before every entry, e.g. output_padding [o] -> [0, o], pads [b, e] -> [0, b, 0, e].
    None (attribute absent) stays None, which omits it."""
    if values is None:
        return None
    out = []
    for v in list(values):
        out += [int(fill), int(v)]
    return out
