"""Helpers that fold elementwise constants into conv weights and biases, and split groups."""
from __future__ import annotations

import numpy as np

from .registry import native_helper


@native_helper("is_channel_const")
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


@native_helper("scale_conv_weight")
def scale_conv_weight(w, c, divide: bool = False):
    """Conv weights [O, I/g, ...] times (or divided by) a per-output-channel constant."""
    w64 = np.asarray(w, np.float64)
    k = np.asarray(c, np.float64).reshape(-1)
    k = np.broadcast_to(k, (w64.shape[0],)) if k.size == 1 else k
    k = 1.0 / k if divide else k
    return (w64 * k.reshape((-1,) + (1,) * (w64.ndim - 1))).astype(np.asarray(w).dtype)


def _float_type(*arrays):
    """The float type of the first float array given (the model's), else float32."""
    for a in arrays:
        if a is not None and np.asarray(a).dtype.kind == "f":
            return np.asarray(a).dtype
    return np.float32


@native_helper("scale_conv_bias")
def scale_conv_bias(b, c, channels: int, divide: bool = False):
    """Conv bias times (or divided by) a per-output-channel constant; a missing bias is zeros."""
    k = np.asarray(c, np.float64).reshape(-1)
    k = np.broadcast_to(k, (int(channels),)) if k.size == 1 else k
    b64 = np.zeros(int(channels)) if b is None else np.asarray(b, np.float64)
    return (b64 / k if divide else b64 * k).astype(_float_type(b, c))


@native_helper("shift_conv_bias")
def shift_conv_bias(b, c, channels: int, subtract: bool = False):
    """Conv bias plus (or minus) a per-output-channel constant; a missing bias counts as zeros."""
    k = np.asarray(c, np.float64).reshape(-1)
    k = np.broadcast_to(k, (int(channels),)) if k.size == 1 else k
    b64 = np.zeros(int(channels)) if b is None else np.asarray(b, np.float64)
    return (b64 - k if subtract else b64 + k).astype(_float_type(b, c))


@native_helper("bn_scale")
def bn_scale(s, v, eps, rank: int):
    """BatchNorm as x * scale + shift: scale shaped [C, 1, ...] for a rank-`rank` input."""
    k = np.asarray(s, np.float64) / np.sqrt(np.asarray(v, np.float64) + float(eps))
    return k.reshape((-1,) + (1,) * (int(rank) - 2)).astype(_float_type(s))


@native_helper("bn_shift")
def bn_shift(s, beta, m, v, eps, rank: int):
    k = np.asarray(s, np.float64) / np.sqrt(np.asarray(v, np.float64) + float(eps))
    shift = np.asarray(beta, np.float64) - np.asarray(m, np.float64) * k
    return shift.reshape((-1,) + (1,) * (int(rank) - 2)).astype(_float_type(s))


@native_helper("block_diagonal")
def block_diagonal(w, groups: int):
    """Grouped weights -> dense ones with zeros off the diagonal blocks, so a group=1 conv computes
    exactly the grouped one. Conv [O, I/g, ...] -> [O, I, ...]; ConvTranspose [I, O/g, ...] ->
    [I, O, ...] is the same operation: rows split in g blocks, block i placed at column block i."""
    w = np.asarray(w)
    g = int(groups)
    out_per, in_per = w.shape[0] // g, w.shape[1]
    dense = np.zeros((w.shape[0], in_per * g) + w.shape[2:], w.dtype)
    for i in range(g):
        dense[i * out_per:(i + 1) * out_per, i * in_per:(i + 1) * in_per] = w[i * out_per:(i + 1) * out_per]
    return dense


@native_helper("bn_depthwise_weight")
def bn_depthwise_weight(s, v, eps):
    """BatchNorm's per-channel scale as depthwise 1x1 conv weights [C, 1, 1, 1]."""
    k = np.asarray(s, np.float64) / np.sqrt(np.asarray(v, np.float64) + float(eps))
    return k.reshape(-1, 1, 1, 1).astype(_float_type(s))


@native_helper("group_part", kinds=("any", "attr", "attr"), symbolic=True)
def group_part(a, groups: int, index: int):
    """Block `index` of `groups` equal blocks along axis 0 (the conv weights or bias of one group:
    Conv [O, I/g, ...] and ConvTranspose [I, O/g, ...] weights, bias [O]); None stays None."""
    if a is None:
        return None
    a = np.asarray(a)
    rows = a.shape[0] // int(groups)
    return a[int(index) * rows:(int(index) + 1) * rows].copy()
