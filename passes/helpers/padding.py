"""Helpers for the Pad rules (rules/hailo8/pad.rw)."""

from __future__ import annotations

import numpy as np

from .registry import native_helper


@native_helper("w_pads_only")
def w_pads_only(pads) -> bool:
    """Pads of a rank-4 tensor that pad W (axis 3) only: [0, 0, 0, l, 0, 0, 0, r]."""
    p = np.asarray(pads).ravel().tolist()
    return len(p) == 8 and not any(p[i] for i in (0, 1, 2, 4, 5, 6)) and min(p) >= 0


@native_helper("peel_w_pads")
def peel_w_pads(pads, left: int, right: int):
    """The pads with `left` / `right` fewer columns on W (a reflect pad peeled one column a side)."""
    p = np.asarray(pads, np.int64).ravel().copy()
    p[3] -= int(left)
    p[7] -= int(right)
    return p


@native_helper("hw_pads_only", kinds=("const",))
def hw_pads_only(pads) -> bool:
    """Pads of a rank-4 tensor that pad H and W only, none negative (a crop): [0, 0, t, l, 0, 0, b, r]."""
    p = np.asarray(pads).ravel().tolist()
    return len(p) == 8 and not any(p[i] for i in (0, 1, 4, 5)) and min(p) >= 0


@native_helper("conv_pads_with", kinds=("attr", "const"))
def conv_pads_with(conv_pads, pads):
    """A 2-D Conv's pads [t, l, b, r] (None: none) grown by a rank-4 Pad's H and W pads."""
    c = [0, 0, 0, 0] if conv_pads is None else [int(v) for v in conv_pads]
    p = np.asarray(pads, np.int64).ravel().tolist()
    return [c[0] + p[2], c[1] + p[3], c[2] + p[6], c[3] + p[7]]
