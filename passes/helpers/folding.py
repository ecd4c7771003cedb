"""Helpers that fold elementwise constants into conv weights and biases, and split groups."""

from __future__ import annotations

import numpy as np

from rewriter.dsl.numeric import cast, div, f64, zeros

from .bn_fold import bn_factor
from .registry import native_helper


@native_helper("is_channel_const", kinds=("const", "attr", "attr"), symbolic=True)
def is_channel_const(c, channels: int, out_rank: int) -> bool:
    """True when c broadcasts over [N, C, spatial...] as a per-channel (or scalar) value."""
    c = np.asarray(c)
    if c.ndim > out_rank:  # would broadcast the output to a higher rank
        return False
    if c.size == 1:
        return True
    if c.size != channels:
        return False
    aligned = (1,) * (out_rank - c.ndim) + c.shape
    return aligned[1] == channels


def _per_channel(c, channels: int):
    k = f64(np.asarray(c)).reshape(-1)
    return np.broadcast_to(k, (int(channels),)) if k.size == 1 else k


@native_helper("scale_conv_weight", kinds=("const", "const", "attr"), symbolic=True)
def scale_conv_weight(w, c, divide: bool = False):
    """Conv weights [O, I/g, ...] times (or divided by) a per-output-channel constant."""
    w = np.asarray(w)
    k = _per_channel(c, w.shape[0])
    k = div(1.0, k) if divide else k
    return cast(f64(w) * k.reshape((-1,) + (1,) * (w.ndim - 1)), w)


@native_helper("scale_conv_bias", kinds=("any", "const", "attr", "attr"), symbolic=True)
def scale_conv_bias(b, c, channels: int, divide: bool = False):
    """Conv bias times (or divided by) a per-output-channel constant; a missing bias is zeros."""
    k = _per_channel(c, channels)
    b64 = zeros(int(channels), k) if b is None else f64(b)
    return cast(div(b64, k) if divide else b64 * k, b if b is not None else c)


@native_helper("shift_conv_bias", kinds=("any", "const", "attr", "attr"), symbolic=True)
def shift_conv_bias(b, c, channels: int, subtract: bool = False):
    """Conv bias plus (or minus) a per-output-channel constant; a missing bias counts as zeros."""
    k = _per_channel(c, channels)
    b64 = zeros(int(channels), k) if b is None else f64(b)
    return cast(b64 - k if subtract else b64 + k, b if b is not None else c)


@native_helper("bn_scale", kinds=("const", "const", "attr", "attr"), symbolic=True)
def bn_scale(s, v, eps, rank: int):
    """BatchNorm as x * scale + shift: scale shaped [C, 1, ...] for a rank-`rank` input."""
    return cast(bn_factor(s, v, eps).reshape((-1,) + (1,) * (int(rank) - 2)), s)


@native_helper("bn_shift", kinds=("const", "const", "const", "const", "attr", "attr"), symbolic=True)
def bn_shift(s, beta, m, v, eps, rank: int):
    """BatchNorm's shift beta - m * s / sqrt(v + eps), shaped [C, 1, ...] for a rank-`rank` input."""
    shift = f64(beta) - f64(m) * bn_factor(s, v, eps)
    return cast(shift.reshape((-1,) + (1,) * (int(rank) - 2)), s)


@native_helper("block_diagonal", kinds=("const", "attr"), symbolic=True)
def block_diagonal(w, groups: int):
    """Grouped weights -> dense ones with zeros off the diagonal blocks, so a group=1 conv computes
    exactly the grouped one. Conv [O, I/g, ...] -> [O, I, ...]; ConvTranspose [I, O/g, ...] ->
    [I, O, ...] is the same operation: rows split in g blocks, block i placed at column block i."""
    w = np.asarray(w)
    g = int(groups)
    out_per, in_per = w.shape[0] // g, w.shape[1]
    dense = np.zeros((w.shape[0], in_per * g) + w.shape[2:], w.dtype)
    for i in range(g):
        dense[i * out_per : (i + 1) * out_per, i * in_per : (i + 1) * in_per] = w[i * out_per : (i + 1) * out_per]
    return dense


@native_helper("bn_depthwise_weight", kinds=("const", "const", "attr"), symbolic=True)
def bn_depthwise_weight(s, v, eps):
    """BatchNorm's per-channel scale as depthwise 1x1 conv weights [C, 1, 1, 1]."""
    return cast(bn_factor(s, v, eps).reshape(-1, 1, 1, 1), s)


@native_helper("group_part", kinds=("any", "attr", "attr"), symbolic=True)
def group_part(a, groups: int, index: int):
    """Block `index` of `groups` equal blocks along axis 0 (the conv weights or bias of one group:
    Conv [O, I/g, ...] and ConvTranspose [I, O/g, ...] weights, bias [O]); None stays None."""
    if a is None:
        return None
    a = np.asarray(a)
    rows = a.shape[0] // int(groups)
    return a[int(index) * rows : (int(index) + 1) * rows].copy()
