"""Load a segment's calibration set in the layout runner.optimize() wants (float32 NHWC)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # segment_io imports onnx: a compile process only needs for_optimize
    from .segment_io import SegmentIO

NO_CALIB_HINT = (
    "re-run the rewriter with --calib DATA.npy so it writes per-segment calibration windows, "
    "or pass --use-random-calib (quantization will then be poor)"
)


class CalibError(ValueError):
    """Calibration data is missing or does not fit the segment."""


def sample_shape(onnx_shape: list) -> tuple:
    """Per-sample host shape for one ONNX input: [1,C,H,W] -> (H,W,C); [1,C] -> (C,)."""
    if len(onnx_shape) == 4:
        _, c, h, w = onnx_shape
        return (h, w, c)
    if len(onnx_shape) == 2:
        return (onnx_shape[1],)
    raise CalibError(
        f"segment input shape {onnx_shape}: only rank-4 NCHW (or rank-2) inputs can be "
        "calibrated; Hailo rejects rank-3 tensors (see HAILO.md)"
    )


def _check(arr: np.ndarray, onnx_shape: list, where: str) -> np.ndarray:
    want = sample_shape(onnx_shape)
    if arr.ndim != len(want) + 1 or tuple(arr.shape[1:]) != want:
        hint = ""
        if len(onnx_shape) == 4 and tuple(arr.shape[1:]) == tuple(onnx_shape[1:]):
            hint = " (this looks NCHW: transpose to NHWC with arr.transpose(0, 2, 3, 1))"
        raise CalibError(
            f"{where}: calibration shape {tuple(arr.shape)} != (N, {', '.join(map(str, want))})"
            f" for ONNX input {onnx_shape}{hint}; the width must match exactly"
        )
    if arr.shape[0] == 0:
        raise CalibError(f"{where}: calibration set is empty")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _load_one(path: Path, io: SegmentIO) -> list:
    """Arrays for each segment input, in input order."""
    if not path.is_file():
        raise CalibError(f"calibration file {path} does not exist")
    if path.suffix == ".npy":
        if len(io.input_names) != 1:
            raise CalibError(
                f"{path.name}: a .npy holds one input but the segment has "
                f"{len(io.input_names)} ({io.input_names}); use an .npz keyed by input name"
            )
        return [_check(np.load(path), io.input_shapes[0], path.name)]
    if path.suffix == ".npz":
        with np.load(path) as data:
            missing = [n for n in io.input_names if n not in data.files]
            if missing:
                raise CalibError(f"{path.name}: no arrays for inputs {missing} (has {data.files})")
            return [_check(data[n], s, f"{path.name}[{n}]") for n, s in zip(io.input_names, io.input_shapes)]
    raise CalibError(f"{path.name}: calibration must be .npy (one input) or .npz (keyed by input name)")


def for_optimize(arrays: list, net_name: str):
    """One input: the array; several: {"<net>/input_layer{i+1}": array} in ONNX input order."""
    if len(arrays) == 1:
        return arrays[0]
    return {f"{net_name}/input_layer{i + 1}": a for i, a in enumerate(arrays)}


def load_calibration(out_dir, calib_paths: list, io: SegmentIO) -> list:
    """Arrays per input. Several calib files (tiles sharing one model see different data) are
    concatenated along N so the quantization ranges cover every tile."""
    if not calib_paths:
        raise CalibError(f"no calibration data: {NO_CALIB_HINT}")
    per_file = [_load_one(Path(out_dir) / p, io) for p in calib_paths]
    arrays = [np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0] for parts in zip(*per_file)]
    counts = {a.shape[0] for a in arrays}
    if len(counts) != 1:
        raise CalibError(f"calibration inputs have different sample counts {sorted(counts)}")
    return arrays


def random_calibration(io: SegmentIO, n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n,) + sample_shape(s)).astype(np.float32) for s in io.input_shapes]
