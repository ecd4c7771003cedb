"""The sidecar without HTTP: load the plan once per worker, warm it up, run requests, report state."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from ..parity import random_inputs
from ..schema import load_spec
from .config import ServeConfig, output_keys
from .executor import BoundedExecutor
from .health import ServiceState, plan_identity
from .metrics import ServeMetrics
from .payload import PayloadCodec
from .runner import PlanRunner, RunResult, StubRunner

PlanLoader = Callable[[Path, str, int], object]  # (plan dir, backend, intra-op threads) -> Plan


def load_plan(path: Path, backend: str, threads: int):
    from .. import Plan

    return Plan.load(path, backend=backend, intra_op_num_threads=threads)


class Service:
    def __init__(self, config: ServeConfig, plan_loader: PlanLoader = load_plan):
        config.validate()
        self.config = config
        self._closed = False
        self.spec = load_spec(config.plan)
        sha, model = plan_identity(self.spec.path, self.spec.doc)
        keys = output_keys(config.output_names, [t.name for t in self.spec.outputs])
        self.codec = PayloadCodec(self.spec.inputs, keys)
        if config.stub:
            why = f"stub outputs ({config.stub_reason or 'requested'}); the plan is not run"
            self.state = ServiceState("stub", why, sha, model)
            runners = [StubRunner(self.spec.outputs)]
        else:
            self.state = ServiceState("", "", sha, model)
            runners = self._plan_runners(plan_loader)
            self.state.backend = runners[0].backend_name
            self.state.backend_reason = runners[0].plan.backend_reason
        self.executor: BoundedExecutor | None = None
        self.metrics = ServeMetrics(lambda: self.executor.depth if self.executor else 0)
        self.metrics.set_backend(self.state.backend, config.stub)
        self.state.on_fallback.append(lambda failed: self.metrics.fell_back(failed, self.state.backend))
        try:
            self._warm_up(runners, config.warmup_runs)  # may already fall back: metrics and state are ready
        except BaseException:
            for r in runners:
                r.close()
            raise
        self.executor = BoundedExecutor(runners, config.queue_size)

    def _plan_runners(self, plan_loader: PlanLoader) -> list[PlanRunner]:
        config = self.config

        def load(backend: str):
            return plan_loader(self.spec.root, backend, config.threads)

        runners = []
        try:
            for _ in range(config.workers):
                runners.append(PlanRunner(load, config.backend, self.state, config.fallback))
        except BaseException:
            for r in runners:
                r.close()
            raise
        return runners

    def _warm_up(self, runners, count: int) -> None:
        """First runs allocate arenas and (hailo) configure the device: keep them out of request latency."""
        rng = np.random.default_rng(0)
        for r in runners:
            for _ in range(count):
                r.run(random_inputs(self.spec.inputs, rng))

    def submit(self, feeds: dict) -> Future:
        """A Future of RunResult; raises QueueFull when the queue is full."""
        return self.executor.submit(feeds)

    def account(self, result: RunResult) -> None:
        self.metrics.windows.inc()
        self.metrics.seconds.labels("device").inc(result.device_seconds)
        self.metrics.seconds.labels("host").inc(result.host_seconds)

    def health(self) -> dict:
        return self.state.document(
            self.executor.depth,
            {
                "plan": str(self.spec.root),
                "target": self.spec.target,
                "inputs": self.codec.describe(),
                "outputs": {self.codec.output_keys[t.name]: list(t.shape) for t in self.spec.outputs},
                "workers": len(self.executor.runners),
                "queue_size": self.config.queue_size,
            },
        )

    def close(self) -> None:
        """Drain the queue and release the plans (idempotent: the lifespan and serve() both call it)."""
        if not self._closed:
            self._closed = True
            self.executor.close()
