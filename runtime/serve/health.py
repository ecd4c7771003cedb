"""Service state shared by the workers and the HTTP handlers, and the /healthz document."""

from __future__ import annotations

import hashlib
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path


def plan_identity(plan_json: Path, doc: dict) -> tuple[str, str | None]:
    """(sha256 of plan.json's bytes, the source model's name from plan.json `source.model`)."""
    sha = hashlib.sha256(plan_json.read_bytes()).hexdigest()
    source = doc.get("source") if isinstance(doc.get("source"), dict) else {}
    return sha, source.get("model")


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB.

    Linux: VmHWM of /proc/self/status. Not ru_maxrss: Linux carries that across fork + exec, so a
    server started from a big parent (a script that loaded torch) would report the parent's peak.
    Elsewhere ru_maxrss (bytes on macOS, KiB on other Unixes).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


class ServiceState:
    def __init__(self, backend: str, reason: str, plan_sha256: str, model: str | None):
        self.backend, self.backend_reason = backend, reason
        self.plan_sha256, self.model = plan_sha256, model
        self.started = time.monotonic()
        self.fallback_active = False
        self.fallbacks = 0
        self.last_error: dict | None = None
        self._lock = threading.Lock()
        self.on_fallback: list[Callable[[str], None]] = []  # metrics hook, called with the failed backend

    def record_error(self, message: str) -> None:
        with self._lock:
            self.last_error = {"message": message, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def record_fallback(self, failed: str, reason: str, backend: str) -> None:
        self.record_error(reason)
        with self._lock:
            self.fallbacks += 1
            self.fallback_active = True
            self.backend, self.backend_reason = backend, reason
        for hook in self.on_fallback:
            hook(failed)

    def document(self, queue_depth: int, extra: dict) -> dict:
        with self._lock:
            return {
                "status": "degraded" if self.fallback_active else "ok",
                "backend": self.backend,
                "backend_reason": self.backend_reason,
                "fallback": {"active": self.fallback_active, "count": self.fallbacks},
                "plan_sha256": self.plan_sha256,
                "model": self.model,
                "uptime_s": round(time.monotonic() - self.started, 3),
                "last_error": self.last_error,
                "queue_depth": queue_depth,
                "peak_rss_mb": round(peak_rss_mb(), 1),
                **extra,
            }
