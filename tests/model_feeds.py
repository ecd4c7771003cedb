"""Random inputs for an ONNX model, shared by the test folders."""

import numpy as np
import onnx


def random_feeds(model: onnx.ModelProto, seed=0, shapes=None) -> dict:
    """Standard-normal values per graph input (initializer-backed inputs skipped), float32 unless
    the input is float16 or float64; dynamic dims become 1 unless `shapes` {input: dims} says otherwise."""
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims = (shapes or {}).get(value.name) or [
            d.dim_value if d.dim_value > 0 else 1 for d in value.type.tensor_type.shape.dim
        ]
        elem = value.type.tensor_type.elem_type
        dtype = _OTHER_FLOATS.get(elem, np.float32)
        feeds[value.name] = rng.standard_normal(dims).astype(dtype)
    return feeds


_OTHER_FLOATS = {onnx.TensorProto.FLOAT16: np.float16, onnx.TensorProto.DOUBLE: np.float64}
