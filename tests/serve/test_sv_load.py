"""A bounded load on a real `rewrite serve` subprocess with the real TCN encoder plan: 2,000
requests from 8 concurrent keep-alive clients. No 5xx, p95 under the deployment contract (50 ms),
the server's peak RSS under 512 MB; /metrics agrees with what the clients saw.

The latency figure is judged only when the box is not busy with other work: with a load average
over 1.5x the cores (before or after the run), the neighbours' processes are what p95 measures,
and the test says so in a skip after every other check has passed.

The clients are stdlib http.client connections on threads: on this 2-core box the client shares
the cores with the server, and httpx's async client costs ~3 ms of CPU per request here (0.3-0.4 ms
for http.client), which would be measured as server latency."""

import http.client
import json
import os
import threading
import time
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from sv_helpers import ServerProcess, window

REQUESTS, CLIENTS = 2000, 8
BUSY_LOAD = 1.5 * (os.cpu_count() or 1)


def drive(url: str, bodies: list[bytes]) -> tuple[list[float], list[int]]:
    host, port = urlsplit(url).hostname, urlsplit(url).port
    counter, lock = iter(range(REQUESTS)), threading.Lock()
    latencies, statuses, errors = [], [], []

    def client():
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                conn.request(
                    "POST", "/infer", body=bodies[i % len(bodies)], headers={"Content-Type": "application/json"}
                )
                r = conn.getresponse()
                data = r.read()
                dt = time.perf_counter() - t0
                if r.status == 200 and len(json.loads(data)["latent"]) != 64:
                    raise AssertionError(f"bad answer {data[:100]!r}")
                with lock:
                    latencies.append(dt)
                    statuses.append(r.status)
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    return latencies, statuses


def test_2000_requests_at_concurrency_8(tcn_plan):
    bodies = [json.dumps({"x": window(s).tolist()}).encode() for s in range(16)]
    server = ServerProcess(str(tcn_plan), "--output-names", "latent", "--queue", str(2 * CLIENTS))
    load_before = os.getloadavg()[0]
    try:
        latencies, statuses = drive(server.url, bodies)
        load = max(load_before, os.getloadavg()[0])
        health = httpx.get(server.url + "/healthz").json()
        metrics = httpx.get(server.url + "/metrics").text
    finally:
        code, err = server.stop()
    assert code == 0, err
    assert len(statuses) == REQUESTS
    assert not [s for s in statuses if s >= 500], f"5xx answers: {sorted(set(statuses))}"
    assert statuses.count(200) == REQUESTS
    p50, p95 = np.percentile(np.asarray(latencies) * 1e3, [50, 95])
    print(
        f"\n{REQUESTS} requests, {CLIENTS} clients: p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
        f"server peak RSS {health['peak_rss_mb']} MB, load average {load:.1f}"
    )
    assert health["peak_rss_mb"] < 512
    served = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith('hailo_rewriter_requests_total{endpoint="/infer",status="200"}')
    )
    assert served == REQUESTS
    if p95 >= 50.0 and load > BUSY_LOAD:
        pytest.skip(
            f"p95 {p95:.1f} ms not judged: load average {load:.1f} on {os.cpu_count()} cores "
            f"(other processes); everything else passed"
        )
    assert p95 < 50.0, f"p95 {p95:.1f} ms over the contract's 50 ms (load average {load:.1f})"
