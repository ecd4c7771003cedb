"""What a worker runs per request: the plan (with the hailo -> CPU fallback) or stub outputs."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..schema import TensorSpec
from .health import ServiceState

CPU_BACKEND = "onnxruntime"


@dataclass
class RunResult:
    outputs: dict
    device_seconds: float = 0.0  # inside the engine calls of the plan's hailo steps
    host_seconds: float = 0.0  # the rest of Plan.run: host steps, stitching, the runtime itself


class PlanRunner:
    """One plan instance. If a run fails on the accelerator backend, the plan is reloaded with
    backend="onnxruntime" (the float segments of the same plan), the event is recorded in the
    service state, and the request is answered from the CPU plan; later requests stay on the CPU."""

    def __init__(self, load: Callable[[str], object], backend: str, state: ServiceState, fallback: bool = True):
        self._load, self.state, self.fallback = load, state, fallback
        self.plan = load(backend)

    @property
    def backend_name(self) -> str:
        return self.plan.backend_name

    def run(self, feeds: dict) -> RunResult:
        try:
            return self._run(feeds)
        except Exception as e:
            if not self.fallback or self.plan.backend_name == CPU_BACKEND:
                self.state.record_error(f"plan run failed on {self.plan.backend_name}: {e}")
                raise
            failed = self.plan.backend_name
            self._fall_back(failed, e)
            return self._run(feeds)

    def _run(self, feeds: dict) -> RunResult:
        plan = self.plan
        outputs = plan.run(feeds, profile=True)  # a few clock reads per step (benchmarks/bench_serve.py)
        prof = plan.last_profile
        device = sum(s.backend_seconds for s in prof.steps if s.device == "hailo")
        return RunResult(outputs, device, prof.total_seconds - device)

    def _fall_back(self, failed: str, error: Exception) -> None:
        old = self.plan
        with contextlib.suppress(Exception):  # the device is already in trouble; the CPU plan is what matters
            old.close()
        self.plan = self._load(CPU_BACKEND)
        self.state.record_fallback(
            failed, f"{failed} run failed ({error}); serving the CPU plan on onnxruntime", self.plan.backend_name
        )

    def close(self) -> None:
        self.plan.close()


class StubRunner:
    """Deterministic outputs of the plan's output shapes, for clients integrating before the model
    exists: each output is a fixed vector in [0, 1) seeded by its name (the same on every call and
    every machine), independent of the input."""

    def __init__(self, outputs: list[TensorSpec]):
        self.outputs = {t.name: stub_array(t) for t in outputs}

    def run(self, feeds: dict) -> RunResult:
        return RunResult({n: v.copy() for n, v in self.outputs.items()})

    def close(self) -> None:
        pass


def stub_array(t: TensorSpec) -> np.ndarray:
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in t.shape]
    rng = np.random.default_rng(zlib.crc32(t.name.encode()))
    return rng.random(shape).astype(t.dtype)
