"""NCHW (ONNX segment tensors, batch 1) <-> HailoRT host buffers (NHWC without batch, e.g. (H, W, C);
dense layers (C,)).

The conversion is "move channels last, drop the batch axis". When the non-singleton axes keep
their order (C == 1, or H == W == 1, e.g. [1,1,1,T] -> (1,T,1) or [1,C,1,1] -> (1,1,C)) the
transpose is a pure reshape and we return a view instead of copying.
"""

from __future__ import annotations

import numpy as np

from .errors import PlanError


def channels_last_shape(nchw_shape) -> tuple:
    """[1, C, *S] -> (*S, C); [1, C] -> (C,)."""
    shape = tuple(nchw_shape)
    if len(shape) < 2 or shape[0] != 1:
        raise PlanError(f"expected a batch-1 NCHW-style shape [1, C, ...], got {list(shape)}")
    return shape[2:] + (shape[1],) if len(shape) > 2 else (shape[1],)


def _is_pure_reshape(nchw_shape) -> bool:
    """True when moving C behind the spatial axes does not reorder any element in memory."""
    c, spatial = nchw_shape[1], nchw_shape[2:]
    return c == 1 or all(d == 1 for d in spatial)


def to_host(x: np.ndarray, host_shape) -> np.ndarray:
    """ONNX tensor [1, C, *S] -> C-contiguous float32 host buffer of `host_shape` (channels last)."""
    host_shape = tuple(host_shape)
    if x.size != int(np.prod(host_shape, dtype=np.int64)):
        raise PlanError(f"tensor of shape {list(x.shape)} does not fit a host buffer of shape {host_shape}")
    if x.dtype != np.float32:
        x = x.astype(np.float32)
    if x.ndim <= 2 or _is_pure_reshape(x.shape):
        # np.reshape only copies when x itself is not contiguous (e.g. a slice view).
        return np.ascontiguousarray(x).reshape(host_shape)
    moved = np.moveaxis(x[0], 0, -1)
    return np.ascontiguousarray(moved).reshape(host_shape)


def from_host(buf: np.ndarray, nchw_shape) -> np.ndarray:
    """Host buffer (channels last, no batch) -> ONNX tensor of `nchw_shape` ([1, C, *S])."""
    nchw_shape = tuple(nchw_shape)
    if buf.size != int(np.prod(nchw_shape, dtype=np.int64)):
        raise PlanError(f"host buffer of shape {list(buf.shape)} does not fit tensor shape {list(nchw_shape)}")
    if len(nchw_shape) <= 2 or _is_pure_reshape(nchw_shape):
        return buf.reshape(nchw_shape)
    last = buf.reshape(channels_last_shape(nchw_shape))
    return np.ascontiguousarray(np.moveaxis(last, -1, 0))[None]
