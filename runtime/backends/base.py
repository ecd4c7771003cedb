"""The backend interface: a Backend opens one Segment per onnx step.

Backends cache the expensive object (ORT session, configured HEF) per distinct file, so steps
that share a `model` (tiles) share it; a Segment is the cheap per-step handle around it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..schema import StepSpec


class Segment:
    input_names: list[str]  # the segment's graph inputs, in binding order
    output_names: list[str]
    last_backend_seconds: float = 0.0  # time spent inside the engine call (session.run / cim.run)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def buffers(self) -> list[np.ndarray]:
        """Persistent arrays that returned outputs may alias (reused by the next run)."""
        return []


class Backend:
    name = ""

    def open(self, model_path: Path, step: StepSpec) -> Segment:
        raise NotImplementedError

    def close(self) -> None:
        pass
