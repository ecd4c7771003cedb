"""Prometheus metrics of the sidecar, on a registry of its own (one per app, so tests can build many)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

PREFIX = "hailo_rewriter"
# The contract is p95 < 50 ms; resolve the fast end finely, keep a few buckets past the limit.
LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServeMetrics:
    def __init__(self, queue_depth: Callable[[], int]):
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)  # process_resident_memory_bytes, cpu seconds, open fds
        self.latency = Histogram(
            f"{PREFIX}_request_seconds",
            "Request latency from body read to response, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            f"{PREFIX}_requests", "Requests answered, by endpoint and HTTP status", ["endpoint", "status"], registry=r
        )
        self.errors = Counter(
            f"{PREFIX}_errors",
            "Requests not served, by kind (bad_json, bad_field, bad_shape, "
            "bad_value, too_large, queue_full, plan_error)",
            ["kind"],
            registry=r,
        )
        self.windows = Counter(f"{PREFIX}_windows", "Windows (plan runs) served", registry=r)
        self.seconds = Counter(
            f"{PREFIX}_plan_seconds",
            "Time inside Plan.run: where=device is the engine "
            "time of the plan's hailo steps (on whichever backend runs them), where=host the "
            "rest (host steps, stitching, runtime)",
            ["where"],
            registry=r,
        )
        depth = Gauge(f"{PREFIX}_queue_depth", "Requests queued or running", registry=r)
        depth.set_function(queue_depth)
        self.fallbacks = Counter(
            f"{PREFIX}_fallbacks",
            "Hailo backend failures answered by falling back to the CPU plan, by failed backend",
            ["backend"],
            registry=r,
        )
        self.fallback_active = Gauge(f"{PREFIX}_fallback_active", "1 while the CPU fallback plan serves", registry=r)
        self.backend = Info(f"{PREFIX}_backend", "Backend running the plan's hailo steps", registry=r)

    def set_backend(self, name: str, stub: bool) -> None:
        self.backend.info({"backend": name, "stub": str(stub).lower()})

    def fell_back(self, failed: str, now_serving: str) -> None:
        self.fallbacks.labels(failed).inc()
        self.fallback_active.set(1)
        self.set_backend(now_serving, False)

    def render(self) -> bytes:
        return generate_latest(self.registry)
