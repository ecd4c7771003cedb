"""Compare two sets of outputs (e.g. plan vs original model): cosine similarity and error bounds;
random feeds for a plan's inputs and the z-score the original model expects (shared by check and bench)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ParityRow(NamedTuple):
    output: str
    cosine: float
    max_abs: float
    max_rel: float  # max_abs / max|reference|: error relative to the reference's range


def cosine(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"cannot compare arrays of {a.size} and {b.size} elements")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def max_abs(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def max_rel(a, b) -> float:
    """max |a - b| relative to max |b|; elementwise ratios blow up near zero, this does not."""
    b64 = np.asarray(b, np.float64)
    scale = float(np.max(np.abs(b64))) if b64.size else 0.0
    err = max_abs(a, b)
    return err / scale if scale > 0 else (0.0 if err == 0 else float("inf"))


def compare(a: dict, b: dict) -> list[ParityRow]:
    """One row per output of `a` (in a's order); `b` is the reference."""
    rows = []
    for name, x in a.items():
        if name not in b:
            raise ValueError(f"output {name!r} missing from the reference (has {sorted(b)})")
        x, y = np.asarray(x), np.asarray(b[name])
        if x.shape != y.shape:
            raise ValueError(f"output {name!r}: shape {list(x.shape)} vs reference {list(y.shape)}")
        rows.append(ParityRow(name, cosine(x, y), max_abs(x, y), max_rel(x, y)))
    return rows


def random_inputs(specs: list, rng: np.random.Generator) -> dict[str, np.ndarray]:
    feeds = {}
    for spec in specs:
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(spec.shape).astype(dtype)
        else:
            feeds[spec.name] = rng.integers(0, 4, spec.shape).astype(dtype)
    return feeds


def normalized(feeds: dict, normalization: dict | None) -> dict:
    """The plan takes raw windows when it carries the z-score; the original model does not."""
    if not normalization:
        return feeds
    name, axis = normalization["input"], normalization["axis"]
    shape = [1] * feeds[name].ndim
    shape[axis] = -1
    mean = np.asarray(normalization["mean"], np.float32).reshape(shape)
    std = np.asarray(normalization["std"], np.float32).reshape(shape)
    return {**feeds, name: ((feeds[name] - mean) / std).astype(np.float32)}
