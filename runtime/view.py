"""Host steps plan.json marks as pure layout changes (`view`: reshape, then transpose) run as numpy
views: no onnxruntime call and no copy. With the hailo backend, a channels-last input viewed as
NCHW is turned back into the NHWC device buffer without a copy too (layout.to_host)."""

from __future__ import annotations

import numpy as np

from .errors import PlanError


class ViewOp:
    def __init__(self, step):
        view = step.raw["view"]
        self.name = step.name
        self.shape = tuple(int(d) for d in view["reshape"])
        self.perm = tuple(int(p) for p in view["transpose"]) if "transpose" in view else None
        if self.perm is not None and sorted(self.perm) != list(range(len(self.shape))):
            raise PlanError(
                f"step '{step.name}': view transpose {list(self.perm)} is not a permutation of {len(self.shape)} axes"
            )
        if len(step.inputs) != 1 or len(step.outputs) != 1:
            raise PlanError(f"step '{step.name}': a view step has one input and one output")

    def run(self, args: list) -> list:
        x = args[0]
        if x.size != int(np.prod(self.shape, dtype=np.int64)):
            raise PlanError(f"step '{self.name}': cannot view {list(x.shape)} as {list(self.shape)}")
        y = x.reshape(self.shape)
        return [y.transpose(self.perm) if self.perm is not None else y]

    def buffers(self) -> list:
        return []  # outputs alias the input, never a buffer of ours
