"""What the DFC needs to know about a segment ONNX: input shapes, start and end node names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import onnx


class SegmentError(ValueError):
    """The segment ONNX cannot be handed to the DFC as is."""


@dataclass
class SegmentIO:
    input_names: list
    input_shapes: list  # NCHW (ONNX) shapes, same order as input_names
    output_names: list
    start_nodes: list  # first nodes consuming the graph inputs
    end_nodes: list  # nodes producing the graph outputs, in output order (sets DFC output order)


def net_name_for(name: str) -> str:
    """DFC network names: keep to [A-Za-z0-9_] and start with a letter."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return clean if clean[:1].isalpha() else "net_" + clean


def _static_shape(value_info) -> list:
    """The DFC's input shape. A symbolic first dim is the batch of a tiled step's model (its time
    tiles: HailoRT sets it at run time with set_batch_size), given to the DFC as 1."""
    dims = []
    for k, d in enumerate(value_info.type.tensor_type.shape.dim):
        if k == 0 and d.HasField("dim_param"):
            dims.append(1)
            continue
        if not d.HasField("dim_value") or d.dim_value <= 0:
            raise SegmentError(f"input {value_info.name!r} has a non-static shape; the DFC needs fixed shapes")
        dims.append(int(d.dim_value))
    return dims


def inspect_segment(path) -> SegmentIO:
    model = onnx.load(str(path), load_external_data=False)
    g = model.graph
    inits = {t.name for t in g.initializer}
    inputs = [vi for vi in g.input if vi.name not in inits]
    if not inputs:
        raise SegmentError(f"{Path(path).name}: no graph inputs")

    start = []
    for vi in inputs:
        consumers = [n for n in g.node if vi.name in n.input]
        if not consumers:
            raise SegmentError(f"{Path(path).name}: input {vi.name!r} is not used by any node")
        for n in consumers:
            if not n.name:
                raise SegmentError(f"{Path(path).name}: a {n.op_type} node reading {vi.name!r} has no name")
            if n.name not in start:
                start.append(n.name)

    producer = {out: n for n in g.node for out in n.output}
    end = []
    for out in g.output:
        n = producer.get(out.name)
        if n is None:
            raise SegmentError(f"{Path(path).name}: output {out.name!r} is not produced by a node")
        if not n.name:
            raise SegmentError(f"{Path(path).name}: the {n.op_type} node producing {out.name!r} has no name")
        if n.name not in end:
            end.append(n.name)

    return SegmentIO(
        input_names=[vi.name for vi in inputs],
        input_shapes=[_static_shape(vi) for vi in inputs],
        output_names=[o.name for o in g.output],
        start_nodes=start,
        end_nodes=end,
    )


def with_static_batch(path, dest) -> bool:
    """A tiled step's model has a symbolic batch (its time tiles); the Hailo CLI gets a copy with
    batch 1 written to `dest` (the Python API is given net_input_shapes instead). False when the
    model is static already (nothing written)."""
    model = onnx.load(str(path))
    dims = [
        v.type.tensor_type.shape.dim[0]
        for v in list(model.graph.input) + list(model.graph.output)
        if v.type.tensor_type.shape.dim
    ]
    if not any(d.HasField("dim_param") for d in dims):
        return False
    for d in dims:
        d.dim_value = 1
    del model.graph.value_info[:]
    onnx.save(model, str(dest))
    return True
