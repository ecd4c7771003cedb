"""A model's constants as numpy arrays, each converted on first read.

The opset converter and the tiler look up constants by name (axes, pads, Slice bounds, a tiled
stage's weights). Converting every initializer up front turned each walk over a model with large
weights into a copy of all of them: 0.35 s per walk for a 256 MB Linear layer that no lookup ever
reads as an array."""

from __future__ import annotations

import onnx
from onnx import numpy_helper


class ConstantArrays(dict):
    """name -> numpy array: the initializers given (converted when first read) and whatever is
    stored in it (Constant nodes' values). Iteration and len() see the converted entries only."""

    def __init__(self, protos: dict[str, onnx.TensorProto]):
        super().__init__()
        self._protos = protos

    def __missing__(self, name: str):
        proto = self._protos.get(name)
        if proto is None:
            raise KeyError(name)
        value = self[name] = numpy_helper.to_array(proto)
        return value

    def __contains__(self, name) -> bool:
        return dict.__contains__(self, name) or name in self._protos

    def get(self, name, default=None):
        return self[name] if name in self else default
