"""`--freeze NAME=VALUE[,...]`: a model input held at a fixed value becomes a constant, so what
depends on it folds (silero-vad's `If(sr == 16000)` picks its 16 kHz branch)."""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper

from rewriter.errors import UserError


def parse_freeze(specs: list[str] | None) -> dict[str, list[str]]:
    """`["sr=16000", "mask=1,0,1"]` -> {"sr": ["16000"], "mask": ["1", "0", "1"]}."""
    frozen: dict[str, list[str]] = {}
    for spec in specs or []:
        name, sep, values = spec.partition("=")
        items = [v.strip() for v in values.split(",")] if sep and name else []
        if not items or any(not v for v in items):
            raise UserError(f"bad --freeze {spec!r}: expected NAME=V1,V2,... (numbers)")
        frozen[name] = items
    return frozen


def freeze_inputs(model: onnx.ModelProto, frozen: dict[str, list[str]]) -> None:
    """Turn each frozen input of `model` (in place) into an initializer of its own dtype and shape."""
    for name, spec in frozen_values(model, frozen).items():
        value = np.asarray(spec["value"], spec["dtype"]).reshape(spec["shape"])
        model.graph.initializer.append(numpy_helper.from_array(value, name))
    keep = [v for v in model.graph.input if v.name not in frozen]
    del model.graph.input[:]
    model.graph.input.extend(keep)


def frozen_values(model: onnx.ModelProto, frozen: dict[str, list[str]]) -> dict[str, dict]:
    """{name: {"dtype", "shape", "value" (flat list)}} for each frozen input: what the plan records
    (it no longer takes these inputs; `rewrite check` feeds them to the original model)."""
    inputs = {v.name: v for v in model.graph.input}
    unknown = sorted(set(frozen) - set(inputs))
    if unknown:
        raise UserError(f"--freeze names no model input: {', '.join(unknown)} (inputs: {', '.join(inputs)})")
    record = {}
    for name, items in frozen.items():
        tensor_type = inputs[name].type.tensor_type
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor_type.shape.dim]
        if None in dims:
            if len(items) != 1 or len(dims) > 1:
                raise UserError(f"--freeze {name}: the input's shape has unknown dims; pin it with --input-shape")
            dims = [1] * len(dims)
        if math.prod(dims) != len(items):
            raise UserError(f"--freeze {name}: the input has shape {dims} ({math.prod(dims)} values), got {len(items)}")
        value = np.asarray([_number(v, dtype, name) for v in items], dtype)
        record[name] = {"dtype": dtype.name, "shape": dims, "value": value.tolist()}
    return record


def _number(text: str, dtype: np.dtype, name: str):
    try:
        if dtype.kind == "b":
            if text.lower() not in ("0", "1", "true", "false"):
                raise ValueError(text)
            return text.lower() in ("1", "true")
        return int(text) if dtype.kind in "iu" else float(text)
    except ValueError:
        raise UserError(f"--freeze {name}: {text!r} is not a {dtype.name} value") from None
