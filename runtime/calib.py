"""Calibration samples for a step: from its `calib` file, or split from a {input: (N, ...)} dict.

Calib files are written by the rewriter in host layout (channels last, like HailoRT buffers):
  * .npy: one segment input, shape (N, *channels_last) e.g. (N, H, W, C);
  * .npz: several inputs, keyed by the segment's ONNX input name, same layout each.
Samples returned here are lists of NCHW arrays (one per segment input, batch 1).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .errors import PlanError
from .layout import channels_last_shape, from_host


def load_calib_file(path: Path, inputs: list[tuple[str, list]], step_name: str, reader=None) -> list[list[np.ndarray]]:
    """`inputs` = [(onnx input name, NCHW shape)] of the segment, in binding order; `reader(path)`
    returns the file's verified bytes (PlanSpec.read_file). Never unpickles. A symbolic batch (a
    tiled step's model) counts as 1: every sample is one frame."""
    inputs = [(name, [1, *shape[1:]] if shape and not isinstance(shape[0], int) else shape) for name, shape in inputs]
    if not path.is_file():
        raise PlanError(f"step '{step_name}': calib file {path} not found")
    data = io.BytesIO(reader(path) if reader is not None else path.read_bytes())
    try:
        return _split_calib(data, path, inputs, step_name)
    except (ValueError, OSError, EOFError) as e:
        raise PlanError(f"step '{step_name}': calib file {path.name} is not a numpy array file ({e})") from e


def _split_calib(data, path: Path, inputs, step_name: str) -> list[list[np.ndarray]]:
    if path.suffix == ".npz":
        with np.load(data, allow_pickle=False) as z:
            missing = [n for n, _ in inputs if n not in z.files]
            if missing:
                raise PlanError(f"step '{step_name}': {path.name} lacks arrays for inputs {missing} (has {z.files})")
            arrays = [z[n] for n, _ in inputs]
    else:
        if len(inputs) != 1:
            raise PlanError(
                f"step '{step_name}': a .npy calib file holds one input, the segment has "
                f"{len(inputs)}; use .npz keyed by input name"
            )
        arrays = [np.load(data, allow_pickle=False)]
    per_input = []
    for (name, shape), arr in zip(inputs, arrays):
        want = channels_last_shape(shape)
        if tuple(arr.shape[1:]) != want:
            raise PlanError(
                f"step '{step_name}': calib for {name} has shape {list(arr.shape)}, expected "
                f"(N, {', '.join(map(str, want))}) (host layout, channels last)"
            )
        per_input.append([from_host(np.asarray(a, np.float32), shape) for a in arr])
    counts = {len(v) for v in per_input}
    if len(counts) != 1:
        raise PlanError(f"step '{step_name}': calib arrays have different sample counts {sorted(counts)}")
    return [list(sample) for sample in zip(*per_input)]


def split_samples(calibration: dict, plan_inputs) -> list[dict]:
    """{plan input: (N, ...)} -> N feed dicts matching the plan input shapes."""
    missing = [t.name for t in plan_inputs if t.name not in calibration]
    if missing:
        raise PlanError(f"calibration data lacks plan inputs {missing}")
    per_input = {}
    for t in plan_inputs:
        arr = np.asarray(calibration[t.name])
        if t.shape_matches(arr.shape[1:]):
            per_input[t.name] = [arr[i] for i in range(arr.shape[0])]
        elif len(t.shape) and t.shape[0] == 1 and t.shape_matches((1,) + arr.shape[1:]):
            per_input[t.name] = [arr[i : i + 1] for i in range(arr.shape[0])]  # samples given without batch axis
        else:
            raise PlanError(f"calibration[{t.name!r}] has shape {list(arr.shape)}; expected (N, *{list(t.shape)})")
        per_input[t.name] = [a.astype(t.dtype, copy=False) for a in per_input[t.name]]
    counts = {len(v) for v in per_input.values()}
    if len(counts) != 1 or 0 in counts:
        raise PlanError(f"calibration arrays need the same non-zero sample count, got {sorted(counts)}")
    n = counts.pop()
    return [{k: v[i] for k, v in per_input.items()} for i in range(n)]
