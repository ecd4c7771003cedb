"""BatchNormalization folding into a preceding Conv / ConvTranspose / Gemm (float64 math, cast back;
exact on the prover's symbolic arrays)."""

from __future__ import annotations

import numpy as np

from rewriter.dsl.numeric import cast, div, f64, sqrt

from .registry import native_helper


def bn_factor(s, v, eps):
    """BatchNorm's per-channel scale s / sqrt(v + eps)."""
    return div(f64(s), sqrt(f64(v) + float(eps)))


@native_helper("bn_fold_weight", kinds=("const", "const", "const", "attr", "attr"), symbolic=True)
def bn_fold_weight(w, s, v, eps, axis: int = 0):
    """w * s / sqrt(v + eps) along output-channel `axis`: 0 for Conv weights [Cout, Cin/g, ...],
    1 for ConvTranspose weights [Cin, Cout/g, ...] (any group) and Gemm weights [K, N]."""
    w = np.asarray(w)
    k = bn_factor(s, v, eps)
    if int(axis) != 0:
        # ConvTranspose [Cin, Cout/g, ...]: channel c of group gi sits at column c % (Cout/g),
        # so expand the per-Cout scale into a [groups, Cout/g] grid and broadcast per group.
        per_group = w.shape[axis]
        groups = k.size // per_group
        out = f64(w).reshape(groups, w.shape[0] // groups, per_group, *w.shape[2:])
        out = out * k.reshape(groups, 1, per_group, *([1] * (w.ndim - 2)))
        return cast(out.reshape(w.shape), w)
    shape = [1] * w.ndim
    shape[0] = -1
    return cast(f64(w) * k.reshape(shape), w)


@native_helper("bn_fold_weight_convtranspose", kinds=("const", "const", "const", "attr"), symbolic=True)
def bn_fold_weight_convtranspose(w, s, v, eps):
    """ConvTranspose weights are [Cin, Cout/group, ...]: scale along axis 1 per group."""
    return bn_fold_weight(w, s, v, eps, axis=1)


@native_helper("bn_fold_bias", kinds=("any", "const", "const", "const", "const", "attr"), symbolic=True)
def bn_fold_bias(b, s, beta, m, v, eps):
    """(b - m) * s / sqrt(v + eps) + beta; a missing conv bias (None) counts as zeros."""
    k = bn_factor(s, v, eps)
    b64 = 0.0 if b is None else f64(b)
    return cast((b64 - f64(m)) * k + f64(beta), s)
