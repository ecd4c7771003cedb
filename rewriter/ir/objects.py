"""onnx-graphsurgeon tensors and nodes made as gs's constructors make them, without their cost.

gs.Variable(...) and gs.Node(...) assign each attribute through an overridden __setattr__ (which,
for `inputs`/`outputs`, first provokes an AttributeError) and build SynchronizedLists element by
element: 13 us a Variable, 17 us a Node with its output here, against 3 and 5 us below. The rule
driver makes one Node and one or two Variables per node a rewrite creates (the ConvTasNet example:
about 1,700 nodes and 2,500 tensors). The objects are the same: same class, same attributes in the
same order, the same synchronized lists, linked into their tensors' lists exactly as gs links them
(tests/foundation/test_fd_objects.py compares them with gs's own, attribute by attribute).
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx_graphsurgeon.ir.tensor import LazyValues
from onnx_graphsurgeon.util.misc import SynchronizedList, volume

_new = object.__new__


def _synced(owner, field: str, items) -> SynchronizedList:
    """SynchronizedList(owner, field_name=field, initial=items): each item lists `owner` in its
    `field` (a node in its inputs' `outputs`, ...), as SynchronizedList.extend does."""
    synced = list.__new__(SynchronizedList)
    synced.parent_obj = owner
    synced.field_name = field
    if items:
        list.extend(synced, items)
        for item in items:
            list.append(getattr(item, field), owner)
    return synced


def _tensor(cls, name: str) -> tuple:
    """A `cls` tensor named `name`, with no producer or consumer yet, and its attribute dict."""
    t = _new(cls)
    d = t.__dict__
    d["name"] = name
    d["inputs"] = _synced(t, "outputs", ())
    d["outputs"] = _synced(t, "inputs", ())
    return t, d


def variable(name: str, dtype=None, shape=None) -> gs.Variable:
    """gs.Variable(name, dtype, shape)."""
    v, d = _tensor(gs.Variable, name)
    d["dtype"] = dtype
    d["shape"] = shape
    d["type"] = "tensor_type"
    return v


def constant(name: str, values: np.ndarray) -> gs.Constant:
    """gs.Constant(name, values) of a numpy array."""
    if not isinstance(values, np.ndarray):
        raise TypeError(f"constant {name!r}: values must be a numpy array, not {type(values).__name__}")
    c, d = _tensor(gs.Constant, name)
    d["_values"] = values
    d["data_location"] = None
    d["_export_dtype"] = None
    return c


class RawValues(LazyValues):
    """gs's LazyValues, loaded without gs's copy of onnx's array: a tensor's raw_data (the common
    case) is read as a read-only view of the bytes protobuf hands out (one copy of the weight
    instead of two). Read-only on purpose: a weight's values are shared by every node that reads
    it, so a helper must make new arrays rather than edit them in place. Anything else (typed
    fields, external data, big-endian hosts, a size that does not match) loads as gs loads it."""

    def load(self):
        t = self.tensor
        if t.HasField("raw_data") and t.data_location != onnx.TensorProto.EXTERNAL and _LITTLE:
            try:
                return np.frombuffer(t.raw_data, dtype=self.dtype).reshape(tuple(t.dims))
            except ValueError:
                pass  # a malformed tensor: gs's loader says what is wrong with it
        return super().load()


_LITTLE = sys.byteorder == "little"


def lazy_constant(tensor, dtype: np.dtype, data_location: int | None = None) -> gs.Constant:
    """gs.Constant(tensor.name, LazyValues(tensor), data_location) of an onnx TensorProto whose
    data type is numpy's `dtype`: the values are read only when asked for, as gs's importer does
    (RawValues: one copy fewer)."""
    lazy = _new(RawValues)
    d = lazy.__dict__
    d["tensor"] = tensor
    d["shape"] = tensor.dims
    d["dtype"] = dtype
    d["nbytes"] = volume(tensor.dims) * dtype.itemsize
    c, d = _tensor(gs.Constant, tensor.name)
    d["_values"] = lazy
    d["data_location"] = data_location
    d["_export_dtype"] = None
    return c


def node(op: str, name: str, attrs: dict, inputs: list, outputs: list, domain: str | None = None) -> gs.Node:
    """gs.Node(op, name, attrs, inputs, outputs, domain), with `attrs` held as given."""
    n = _new(gs.Node)
    d = n.__dict__
    d["op"] = op
    d["name"] = name
    d["attrs"] = attrs
    d["inputs"] = _synced(n, "outputs", inputs)
    d["outputs"] = _synced(n, "inputs", outputs)
    d["domain"] = domain
    return n


__all__ = ["constant", "lazy_constant", "node", "variable"]
