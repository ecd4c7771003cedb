"""Batched tiled steps (plan.json `tiles`): gather every time tile's input windows into one batch,
run the model once on it, scatter the output tiles back into whole tensors.

The step's tensors are [N, C, H, W]; the model runs N*count frames, frame b*count + t being tile t
of batch entry b. All of it is whole-array numpy: a window batch is one strided view of the
(zero-padded) source copied in one call, and the output tiles are written through a
[N, c, H, tiles, width] view of the result buffer in one call. Buffers are allocated once.
"""

from __future__ import annotations

import time

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .errors import PlanError
from .schema import Mask, StepSpec, Tiles, Window


def _split_frames(a: np.ndarray, batch: int, count: int) -> np.ndarray:
    """[batch*count, ...] -> [batch, count, ...], the same memory."""
    s = a.strides[0]
    return as_strided(a, (batch, count) + a.shape[1:], (count * s, s) + a.strides[1:])


def mask_batch(m: Mask, count: int, batch: int = 1, dtype=np.float32) -> np.ndarray:
    """[batch*count, 1, height, width]: 1 where tile t's position start + t*step + j lies in [0, length)."""
    pos = m.start + m.step * np.arange(count)[:, None] + np.arange(m.width)[None, :]
    inside = ((pos >= 0) & (pos < m.length)).astype(dtype)
    one = np.broadcast_to(inside[None, :, None, None, :], (batch, count, 1, m.height, m.width))
    return np.ascontiguousarray(one).reshape(batch * count, 1, m.height, m.width)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


class Gather:
    """Tile windows of one [N, C, H, W] tensor into a [N*count, c, H, width] batch. Tiles that lie
    inside [0, W) are copied straight from the source in one strided copy; the few at either end
    that stick out come from a small zero-padded copy of just the region they cover."""

    def __init__(self, w: Window, count: int):
        self.w, self.count = w, count
        self._edges: dict = {}  # (first tile, end tile) -> zero-padded region buffer

    def _group(self, src: np.ndarray, out5: np.ndarray, a: int, b: int, pad: bool) -> None:
        """Tiles [a, b) of the windows of src ([N, c, H, W]) into out5[:, a:b]."""
        w = self.w
        lo = w.start + a * w.step
        if pad:
            hi = w.start + (b - 1) * w.step + w.width
            length = src.shape[-1]
            shape = src.shape[:-1] + (hi - lo,)
            buf = self._edges.get((a, b))
            if buf is None or buf.shape != shape or buf.dtype != src.dtype:
                buf = self._edges[(a, b)] = np.zeros(shape, src.dtype)  # outside [0, W): zeros, never written
            inner = slice(max(lo, 0), min(hi, length))
            buf[..., inner.start - lo : inner.stop - lo] = src[..., inner]
            src, lo = buf, 0
        base = src[..., lo:]
        n, c, h = base.shape[:3]
        sn, sc, sh, sw = base.strides
        view = as_strided(base, (n, b - a, c, h, w.width), (sn, w.step * sw, sc, sh, sw), writeable=False)
        np.copyto(out5[:, a:b], view)

    def __call__(self, x: np.ndarray, out: np.ndarray) -> None:
        w, n = self.w, self.count
        src = x[:, w.c0 : w.c1]  # [N, c, H, W]
        length = src.shape[-1]
        out5 = _split_frames(out, src.shape[0], n)
        if w.step == 0:
            first, end = (0, n) if w.start >= 0 and w.start + w.width <= length else (0, 0)
        else:  # tiles whose window lies inside [0, W)
            first = min(n, max(0, _ceil(-w.start, w.step)))
            end = max(first, min(n, (length - w.width - w.start) // w.step + 1))
        if first < end:
            self._group(src, out5, first, end, pad=False)
        for a, b in ((0, first), (end, n)) if first < end else ((0, n),):
            if a < b:
                self._group(src, out5, a, b, pad=True)


class TiledOp:
    """The runner of a step with `tiles`: gather, one call of `segment` on the batch, scatter."""

    def __init__(self, step: StepSpec, segment, declared: dict):
        self.step, self.segment = step, segment
        self.last_stitch_seconds = 0.0
        t: Tiles = step.tiles
        self.count, self.batch = t.count, t.batch
        for what, bound, names in (
            ("inputs", t.inputs, segment.input_names),
            ("outputs", t.outputs, segment.output_names),
        ):
            if len(bound) != len(names):
                raise PlanError(
                    f"step '{step.name}': {step.raw['model']} has {len(names)} graph {what}, 'tiles' binds {len(bound)}"
                )
        index = {name: k for k, name in enumerate(step.inputs)}
        views = getattr(segment, "input_views", None)  # a backend may take the batch in its own layout
        self._inputs = []  # (Gather | None, step input position, batch)
        for k, b in enumerate(t.inputs):
            if isinstance(b, Mask):
                shape, dtype = (t.frames, 1, b.height, b.width), np.float32
            else:
                spec = declared[b.tensor]
                shape, dtype = (t.frames, b.c1 - b.c0, spec.shape[2], b.width), np.dtype(spec.dtype)
            buf = views[k] if views is not None else np.empty(shape, dtype)
            if tuple(buf.shape) != shape:
                raise PlanError(
                    f"step '{step.name}': the model's input {k} takes {list(buf.shape[1:])} per frame, "
                    f"its binding gives {list(shape[1:])}"
                )
            if isinstance(b, Mask):
                np.copyto(buf, mask_batch(b, t.count, t.batch, buf.dtype))  # constant: built once
                self._inputs.append((None, None, buf))
            else:
                self._inputs.append((Gather(b, t.count), index[b.tensor], buf))
        self._batches = [buf for _, _, buf in self._inputs]
        position = {name: k for k, name in enumerate(step.outputs)}
        self._results = [np.empty(declared[n].shape, np.dtype(declared[n].dtype)) for n in step.outputs]
        self._scatter = []  # per model output: (tensor, its result's [N, c, H, W] block, tile width)
        for b in t.outputs:
            self._scatter.append((b.tensor, self._results[position[b.tensor]][:, b.c0 : b.c1], b.width))
        self.step_name = step.name

    @property
    def last_backend_seconds(self) -> float:
        return self.segment.last_backend_seconds

    def buffers(self) -> list[np.ndarray]:
        return self._results + list(self.segment.buffers())

    def batch_inputs(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        """The model inputs for the step's input tensors `xs` (its `inputs` order)."""
        for gather, k, buf in self._inputs:
            if gather is not None:
                gather(xs[k], buf)
        return self._batches

    def run(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        t0 = time.perf_counter()
        batch = self.batch_inputs(xs)
        t1 = time.perf_counter()
        ys = self.segment.run(batch)
        t2 = time.perf_counter()
        for y, (name, dst, tw) in zip(ys, self._scatter):
            y = np.asarray(y)
            want = (self.batch * self.count, dst.shape[1], dst.shape[2], tw)
            if y.dtype != dst.dtype or y.shape != want:  # as Plan.run checks every other step's outputs
                raise PlanError(
                    f"step '{self.step_name}' produced {name!r} as {y.dtype} {list(y.shape)}, but plan.json "
                    f"declares {dst.dtype} tiles of {list(want)} (segment file does not match the plan?)"
                )
            _scatter(_split_frames(y, self.batch, self.count), dst, tw)
        self.last_stitch_seconds = t1 - t0 + time.perf_counter() - t2
        return self._results


def _scatter(y5: np.ndarray, dst: np.ndarray, tw: int) -> None:
    """Tiles y5 [N, tiles, c, H, tw] into dst [N, c, H, W]: tile t at columns [t*tw, (t+1)*tw),
    the last one cropped to W. One copy of the whole tiles, one of the cropped last tile."""
    length = dst.shape[-1]
    full = min(y5.shape[1], length // tw)
    if full:
        sn, sc, sh, sw = dst.strides
        view = as_strided(dst, dst.shape[:3] + (full, tw), (sn, sc, sh, tw * sw, sw))
        np.copyto(view, y5[:, :full].transpose(0, 2, 3, 1, 4))
    if full < y5.shape[1]:
        dst[..., full * tw :] = y5[:, full, ..., : length - full * tw]


def batch_inputs(step: StepSpec, declared: dict, xs: list[np.ndarray]) -> list[np.ndarray]:
    """The batched model inputs of a tiled step for its input tensors `xs` (fresh arrays): what
    calibration and int8 emulation feed the step's model."""
    t = step.tiles
    index = {name: k for k, name in enumerate(step.inputs)}
    out = []
    for b in t.inputs:
        if isinstance(b, Mask):
            out.append(mask_batch(b, t.count, t.batch))
            continue
        spec = declared[b.tensor]
        buf = np.empty((t.frames, b.c1 - b.c0, spec.shape[2], b.width), np.dtype(spec.dtype))
        Gather(b, t.count)(xs[index[b.tensor]], buf)
        out.append(buf)
    return out


def check_tiled_binding(step: StepSpec, inputs: list, outputs: list, declared: dict) -> None:
    """A tiled step's model has one graph input per `tiles.inputs` entry and one output per
    `tiles.outputs` entry; where its shapes are static they are those of one frame (any batch)."""
    t = step.tiles
    where = f"step '{step.name}': {step.raw['model']}"
    for what, bound, graph in (("inputs", t.inputs, inputs), ("outputs", t.outputs, outputs)):
        if len(bound) != len(graph):
            raise PlanError(f"{where} has {len(graph)} graph {what}, 'tiles' binds {len(bound)}")
    for b, (name, shape) in zip(t.inputs, inputs):
        want = [1, b.height, b.width] if isinstance(b, Mask) else [b.c1 - b.c0, declared[b.tensor].shape[2], b.width]
        _same(where, f"input {name!r}", shape, want)
    for b, (name, shape) in zip(t.outputs, outputs):
        _same(where, f"output {name!r}", shape, [b.c1 - b.c0, declared[b.tensor].shape[2], b.width])


def _same(where: str, what: str, shape, want: list) -> None:
    shape = list(shape)
    if len(shape) != 4 or any(isinstance(d, int) and d != w for d, w in zip(shape[1:], want)):
        raise PlanError(f"{where}: {what} is {shape}, its tile binding gives [frames, {', '.join(map(str, want))}]")
