"""Load generator for `rewrite bench --url`: a running `rewrite serve`, over keep-alive HTTP.

The same phases as measure.py (single stream, then concurrent clients) with a bounded request
count; stdlib http.client only, so it runs on a Pi-light install.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import numpy as np

from ..errors import OptionError
from ..parity import cosine, random_inputs
from ..schema import PlanSpec
from ..serve.payload import SINGLE_INPUT_KEY
from .measure import PARITY_SAMPLES, POOL, Reference, percentiles_ms, summary


class _Http:
    """One keep-alive connection (stdlib: no HTTP client library on a Pi-light install)."""

    def __init__(self, url: str, timeout: float):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise OptionError(f"--url must look like http://HOST:PORT, got {url!r}")
        self.host, self.port, self.base = parts.hostname, parts.port or 80, parts.path.rstrip("/")
        self.timeout = timeout
        self.conn = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        for attempt in (0, 1):  # the server may have closed an idle keep-alive connection: reconnect once
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(
                    method,
                    self.base + path,
                    body=body,
                    headers={"Content-Type": "application/json"} if body is not None else {},
                )
                response = self.conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def get_json(self, path: str) -> dict:
        status, data = self.request("GET", path)
        if status != 200:
            raise OptionError(f"GET {path} answered {status}: {data[:200]!r}")
        return json.loads(data)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def request_bodies(spec: PlanSpec, pool: list[dict]) -> list[bytes]:
    """The sidecar's request form: {"x": one window} for a one-input plan, else one field per input."""
    bodies = []
    for feeds in pool:
        if len(spec.inputs) == 1:
            (x,) = feeds.values()
            doc = {SINGLE_INPUT_KEY: (x[0] if x.ndim > 1 and x.shape[0] == 1 else x).tolist()}
        else:
            doc = {n: v.tolist() for n, v in feeds.items()}
        bodies.append(json.dumps(doc).encode())
    return bodies


def bench_url(
    spec: PlanSpec,
    url: str,
    *,
    requests: int,
    concurrency: int,
    warmup: int,
    reference: Reference | None,
    seed: int = 0,
    timeout: float = 30.0,
    endpoint: str = "/infer",
    progress=lambda message: None,
) -> dict:
    rng = np.random.default_rng(seed)
    pool = [random_inputs(spec.inputs, rng) for _ in range(POOL)]
    bodies = request_bodies(spec, pool)
    probe = _Http(url, timeout)
    try:
        health = probe.get_json("/healthz")
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise OptionError(f"--url {url}: no sidecar answering /healthz ({e})") from e
    result = {
        "mode": "url",
        "url": url,
        "backend": health.get("backend"),
        "backend_reason": health.get("backend_reason"),
    }
    statuses: Counter = Counter()
    lock = threading.Lock()

    def post(client: _Http, i: int) -> float:
        t0 = time.perf_counter()
        try:
            status, _ = client.request("POST", endpoint, bodies[i % POOL])
        except (OSError, http.client.HTTPException):
            status = 0  # no answer at all
        dt = time.perf_counter() - t0
        with lock:
            statuses[status] += 1
        return dt

    for i in range(warmup):
        post(probe, i)
    statuses.clear()
    progress(f"single stream: {requests} requests to {url}{endpoint}")
    single = [post(probe, i) for i in range(requests)]
    result["single_stream"] = {**percentiles_ms(single), "windows_per_s": round(len(single) / sum(single), 2)}

    if concurrency > 1:
        progress(f"concurrent: {requests} requests from {concurrency} clients")
        counter, latencies = iter(range(requests)), []

        def client():
            c = _Http(url, timeout)
            try:
                while True:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    dt = post(c, i)
                    with lock:
                        latencies.append(dt)
            finally:
                c.close()

        threads = [threading.Thread(target=client) for _ in range(concurrency)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        result["concurrent"] = {
            **percentiles_ms(latencies),
            "windows_per_s": round(requests / elapsed, 2),
            "clients": concurrency,
        }
    result["status_counts"] = {str(k): v for k, v in sorted(statuses.items())}
    result["failed_requests"] = sum(v for k, v in statuses.items() if k != 200)
    if reference:
        result["cosine"] = _url_parity(probe, spec, pool, bodies, reference, endpoint)
    health = probe.get_json("/healthz")
    probe.close()
    result["rss_mb"] = health.get("peak_rss_mb")
    return summary(result)


def _url_parity(client: _Http, spec: PlanSpec, pool, bodies, reference: Reference, endpoint: str) -> dict:
    """Response fields are in plan output order (whatever --output-names called them)."""
    worst: dict[str, float] = {}
    for feeds, body in list(zip(pool, bodies))[:PARITY_SAMPLES]:
        status, data = client.request("POST", endpoint, body)
        if status != 200:
            raise OptionError(f"parity request answered {status}: {data[:200]!r}")
        got = list(json.loads(data).values())
        want = reference.run(reference.feeds(feeds))
        names = [t.name for t in spec.outputs]
        if len(got) != len(names):
            raise OptionError(f"response has {len(got)} field(s), the plan {len(names)} output(s) {names}")
        for name, value in zip(names, got):
            if name in want:
                worst[name] = min(worst.get(name, 1.0), round(cosine(np.asarray(value).ravel(), want[name].ravel()), 8))
    return worst
