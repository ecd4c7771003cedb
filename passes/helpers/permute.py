"""Helpers for rules that move Transposes and turn channel shuffles into convs."""

from __future__ import annotations

import numpy as np

from .registry import native_helper


@native_helper("inverse_perm")
def inverse_perm(perm):
    """q with Transpose(Transpose(x, p), q) == x."""
    return [int(i) for i in np.argsort(np.asarray(perm))]


@native_helper("permute_const")
def permute_const(c, perm, rank: int):
    """A constant broadcast against Transpose(x, perm) (rank `rank`), rewritten to broadcast the same
    way against x: aligned to the full rank, then transposed by the inverse permutation."""
    c = np.asarray(c)
    if c.ndim == 0:
        return c
    full = c.reshape((1,) * (int(rank) - c.ndim) + c.shape)
    return np.ascontiguousarray(np.transpose(full, inverse_perm(perm)))


@native_helper("broadcasts_within")
def broadcasts_within(c, rank: int) -> bool:
    """True when constant c broadcast against a rank-`rank` tensor does not raise its rank."""
    return np.asarray(c).ndim <= int(rank)


@native_helper("channel_shuffle_weight")
def channel_shuffle_weight(channels: int, groups: int, dtype: str = "float32"):
    """1x1 conv weights [C, C, 1, 1] of ShuffleNet's channel shuffle: Reshape to [N, g, C/g, H, W],
    swap the two channel axes, Reshape back. Output channel b*g + a reads input channel a*(C/g) + b;
    each output is one input times 1.0, so the conv is exact."""
    c, g = int(channels), int(groups)
    w = np.zeros((c, c, 1, 1), np.dtype(dtype))
    per = c // g
    for a in range(g):
        for b in range(per):
            w[b * g + a, a * per + b, 0, 0] = 1.0
    return w


@native_helper("normalized_axes")
def normalized_axes(axes, rank: int):
    """Axes as sorted non-negative ints (None, a reduce over everything, stays None)."""
    if axes is None:
        return None
    return sorted(int(a) % int(rank) for a in np.atleast_1d(np.asarray(axes)).tolist())


@native_helper("permute_pads")
def permute_pads(pads, perm):
    """Pad's pads for Transpose(x, perm) as pads for x: axis i of the transposed tensor is axis perm[i]."""
    p = np.asarray(pads, np.int64).ravel()
    r = len(perm)
    out = np.zeros(2 * r, np.int64)
    for i, axis in enumerate(int(a) for a in perm):
        out[axis], out[axis + r] = p[i], p[i + r]
    return out


@native_helper("all_but_batch")
def all_but_batch(rank: int):
    """The axes 1 .. rank-1 (every axis but the batch): a ReduceMean over C, H, W, say."""
    return list(range(1, int(rank)))
