"""numpy's names of element types, worked out once per dtype: numpy derives `np.dtype(x).name`
anew at every access (about 10 us), and placement asks it for every tensor of every node."""

from __future__ import annotations

import functools

import numpy as np


def dtype_name(dtype) -> str:
    """numpy's name of `dtype` (np.float32, np.dtype("float32") or "float32": "float32"), or
    str(dtype) for what numpy does not know (an onnx type code, for instance)."""
    try:
        return _remembered(dtype)
    except TypeError:  # an unhashable description
        return _name(dtype)


def _name(dtype) -> str:
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


_remembered = functools.cache(_name)
