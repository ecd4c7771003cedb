"""BatchNormalization folding into a preceding Conv / ConvTranspose (float64 math, cast back)."""
from __future__ import annotations

import numpy as np

from .registry import native_helper


def _bn_scale(s, v, eps) -> np.ndarray:
    return np.asarray(s, np.float64) / np.sqrt(np.asarray(v, np.float64) + float(eps))


@native_helper("bn_fold_weight")
def bn_fold_weight(w, s, v, eps, axis: int = 0):
    """w * s / sqrt(v + eps) along output-channel `axis` (0 for Conv weights [Cout, Cin/g, ...])."""
    w = np.asarray(w)
    k = _bn_scale(s, v, eps)
    shape = [1] * w.ndim
    shape[axis] = -1
    if axis != 0:
        # ConvTranspose [Cin, Cout/g, ...]: channel c of group gi sits at column c % (Cout/g),
        # so expand the per-Cout scale into a [groups, Cout/g] grid and broadcast per group.
        per_group = w.shape[axis]
        groups = k.size // per_group
        out = w.astype(np.float64).reshape(groups, w.shape[0] // groups, per_group, *w.shape[2:])
        out = out * k.reshape(groups, 1, per_group, *([1] * (w.ndim - 2)))
        return out.reshape(w.shape).astype(w.dtype)
    return (w.astype(np.float64) * k.reshape(shape)).astype(w.dtype)


@native_helper("bn_fold_weight_convtranspose")
def bn_fold_weight_convtranspose(w, s, v, eps):
    """ConvTranspose weights are [Cin, Cout/group, ...]: scale along axis 1 per group."""
    return bn_fold_weight(w, s, v, eps, axis=1)


@native_helper("bn_fold_bias")
def bn_fold_bias(b, s, beta, m, v, eps):
    """(b - m) * s / sqrt(v + eps) + beta; a missing conv bias (None) counts as zeros."""
    k = _bn_scale(s, v, eps)
    dtype = np.asarray(s).dtype
    b64 = np.zeros_like(k) if b is None else np.asarray(b, np.float64)
    out = (b64 - np.asarray(m, np.float64)) * k + np.asarray(beta, np.float64)
    return out.astype(dtype)
