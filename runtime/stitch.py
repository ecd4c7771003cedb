"""Stitch steps (slice / concat / sum) executed with numpy, no ONNX.

Each op owns at most one output buffer, allocated at the first run (and again only if the input
shapes change) and reused afterwards. Results that live in those buffers are only valid until
the next run; `Plan` copies a returned tensor when it may alias one (see `buffers()`).
"""

from __future__ import annotations

import numpy as np

from .errors import PlanError
from .schema import StepSpec


class StitchOp:
    kind = ""

    def __init__(self, step: StepSpec):
        self.step = step
        self._buf: np.ndarray | None = None

    def buffers(self) -> list[np.ndarray]:
        return [] if self._buf is None else [self._buf]

    def _buffer(self, shape, dtype, zero: bool) -> np.ndarray:
        buf = self._buf
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._buf = (np.zeros if zero else np.empty)(shape, dtype)
        return buf

    def _fail(self, msg):
        raise PlanError(f"step '{self.step.name}' ({self.kind}): {msg}")

    def run(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


class SliceOp(StitchOp):
    """x[start:end] along `axis`; parts outside the tensor (halo at the edges) read as zeros."""

    kind = "slice"

    def __init__(self, step):
        super().__init__(step)
        s = step.raw
        self.axis, self.start, self.end = s["axis"], s["start"], s["end"]
        self.pad = tuple(s["pad"]) if s.get("pad") is not None else None
        self._plan = None  # (input shape, src index, dst index or None) cached per input shape

    def _prepare(self, shape):
        axis = self.axis if self.axis >= 0 else self.axis + len(shape)
        if not 0 <= axis < len(shape):
            self._fail(f"axis {self.axis} out of range for input of shape {list(shape)}")
        n = shape[axis]
        lo, hi = max(self.start, 0), min(self.end, n)
        if hi <= lo:
            self._fail(f"window [{self.start}, {self.end}) does not overlap the input (length {n} on axis {axis})")
        pad = (lo - self.start, self.end - hi)
        if self.pad is not None and self.pad != pad:
            self._fail(
                f"pad {list(self.pad)} disagrees with window [{self.start}, {self.end}) on length {n} "
                f"(expected {list(pad)})"
            )
        src = (slice(None),) * axis + (slice(lo, hi),)
        if pad == (0, 0):
            self._plan = (shape, src, None, None)
        else:
            out_shape = shape[:axis] + (self.end - self.start,) + shape[axis + 1 :]
            dst = (slice(None),) * axis + (slice(pad[0], pad[0] + hi - lo),)
            self._plan = (shape, src, dst, out_shape)

    def run(self, xs):
        x = xs[0]
        if self._plan is None or self._plan[0] != x.shape:
            self._prepare(x.shape)
        _, src, dst, out_shape = self._plan
        if dst is None:
            return [x[src]]  # a view: no copy
        # Only the interior is ever written, so the zero padding of the reused buffer stays zero.
        buf = self._buffer(out_shape, x.dtype, zero=True)
        buf[dst] = x[src]
        return [buf]


class ConcatOp(StitchOp):
    kind = "concat"

    def __init__(self, step):
        super().__init__(step)
        self.axis = step.raw["axis"]
        self._key = None  # input (shape, dtype)s the buffer was sized for: skip re-deriving per call

    def run(self, xs):
        if len(xs) == 1:
            return [xs[0]]
        key = [(x.shape, x.dtype) for x in xs]
        if key != self._key:
            first = xs[0].shape
            axis = self.axis if self.axis >= 0 else self.axis + len(first)
            try:
                shape = first[:axis] + (sum(x.shape[axis] for x in xs),) + first[axis + 1 :]
                self._buffer(shape, np.result_type(*xs), zero=False)
                np.concatenate(xs, axis=axis, out=self._buf)
            except (ValueError, IndexError, TypeError) as e:
                self._key = None
                self._fail(f"cannot concatenate shapes {[list(x.shape) for x in xs]} on axis {self.axis}: {e}")
            self._key, self._axis = key, axis
            return [self._buf]
        np.concatenate(xs, axis=self._axis, out=self._buf)
        return [self._buf]


class SumOp(StitchOp):
    kind = "sum"

    def __init__(self, step):
        super().__init__(step)
        self._key = None

    def run(self, xs):
        if len(xs) == 1:
            return [xs[0]]
        key = [(x.shape, x.dtype) for x in xs]
        if key != self._key:
            try:
                shape = np.broadcast_shapes(*(x.shape for x in xs))  # slow (~5 us): only on change
            except ValueError:
                self._fail(f"cannot add shapes {[list(x.shape) for x in xs]}")
            self._buffer(shape, np.result_type(*xs), zero=False)
            self._key = key
        buf = self._buf
        np.add(xs[0], xs[1], out=buf)
        for x in xs[2:]:
            np.add(buf, x, out=buf)
        return [buf]


OPS = {"slice": SliceOp, "concat": ConcatOp, "sum": SumOp}


def make_stitch(step: StepSpec) -> StitchOp:
    return OPS[step.kind](step)
