"""The input normalization contract: `--normalize stats.json` puts the z-score (x - mean) / std in
front of the model as a host step, so raw sensor windows go in. The stats file is the seed
project's model_config.json (a "normalization" object with per-channel "mean" and "std") or a bare
{"mean": [...], "std": [...]}; the channel axis is the input axis whose size matches (the last one
when several do, as for channels-last [1, T, C] IMU windows)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx_graphsurgeon as gs

from rewriter.errors import UserError
from rewriter.ir.annotations import pin_to_host
from rewriter.ir.edit import replace_uses

REASON = "input normalization (--normalize) runs on the host"


def read_stats(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"--normalize {path}: cannot read JSON ({exc})") from exc
    stats = data.get("normalization", data) if isinstance(data, dict) else None
    if not isinstance(stats, dict) or "mean" not in stats or "std" not in stats:
        raise UserError(f"--normalize {path}: expected 'mean' and 'std' lists (or a 'normalization' object)")
    mean, std = np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
    if mean.ndim != 1 or mean.shape != std.shape or np.any(std <= 0):
        raise UserError(f"--normalize {path}: mean and std must be equal-length lists with std > 0")
    return mean, std


def channel_axis(shape: list[int], channels: int) -> int:
    matches = [i for i, d in enumerate(shape) if d == channels and i > 0]
    if not matches:
        raise UserError(f"--normalize: {channels} channels match no axis of the input shape {shape}")
    return matches[-1]


def add_normalization(graph: gs.Graph, mean: np.ndarray, std: np.ndarray) -> dict:
    """Insert (x - mean) / std after the (single) graph input; returns the plan's record of it."""
    inputs = [t for t in graph.inputs]
    if len(inputs) != 1:
        raise UserError(f"--normalize needs a model with one input, this one has {len(inputs)}")
    raw = inputs[0]
    shape = list(raw.shape)
    axis = channel_axis(shape, mean.size)
    bshape = [1] * len(shape)
    bshape[axis] = mean.size
    dtype = raw.dtype if raw.dtype is not None else np.float32  # the statistics in the input's own type
    normalized = gs.Variable(f"{raw.name}__normalized", raw.dtype, shape)
    centred = gs.Variable(f"{raw.name}__centred", raw.dtype, shape)
    replace_uses(raw, normalized)
    sub = gs.Node(
        "Sub",
        f"{raw.name}/normalize_sub",
        inputs=[raw, gs.Constant(f"{raw.name}__mean", mean.reshape(bshape).astype(dtype))],
        outputs=[centred],
    )
    div = gs.Node(
        "Div",
        f"{raw.name}/normalize_div",
        inputs=[centred, gs.Constant(f"{raw.name}__std", std.reshape(bshape).astype(dtype))],
        outputs=[normalized],
    )
    for node in (sub, div):
        pin_to_host(node, REASON)
    graph.nodes[:0] = [sub, div]
    return {"input": raw.name, "axis": axis, "mean": mean.tolist(), "std": std.tolist()}
