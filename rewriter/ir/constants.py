"""A model's constants as numpy arrays, each converted on first read.

The opset converter and the tiler look up constants by name (axes, pads, Slice bounds, a tiled
stage's weights). Converting every initializer up front turned each walk over a model with large
weights into a copy of all of them: 0.35 s per walk for a 256 MB Linear layer that no lookup ever
reads as an array."""

from __future__ import annotations

import onnx
from onnx import numpy_helper


class _Unread:
    __slots__ = ("proto",)

    def __init__(self, proto: onnx.TensorProto):
        self.proto = proto


class ConstantArrays(dict):
    """name -> numpy array: the initializers given (converted when first read) and whatever is
    stored in it (Constant nodes' values). Every name is a key from the start, so `in` stays
    dict's own lookup (the tiler asks it for every input of every node); reads convert."""

    def __init__(self, protos: dict[str, onnx.TensorProto]):
        super().__init__((name, _Unread(t)) for name, t in protos.items())

    def __getitem__(self, name: str):
        value = dict.__getitem__(self, name)
        if type(value) is _Unread:
            value = numpy_helper.to_array(value.proto)
            dict.__setitem__(self, name, value)
        return value

    def get(self, name, default=None):
        return self[name] if name in self else default

    def values(self):
        return [self[name] for name in self]

    def items(self):
        return [(name, self[name]) for name in self]
