"""A bounded load on a real `rewrite serve` subprocess with the real TCN encoder plan: 2,000
requests from 8 concurrent clients. No 5xx, p95 under the deployment contract (50 ms), the
server's peak RSS under 512 MB; /metrics agrees with what the clients saw."""
import asyncio
import time

import httpx
import numpy as np
from conftest import ServerProcess, window

REQUESTS, CLIENTS = 2000, 8


async def drive(url: str, bodies: list[bytes]) -> tuple[list[float], list[int]]:
    latencies, statuses = [], []
    counter = iter(range(REQUESTS))
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        async def worker():
            for i in counter:
                t0 = time.perf_counter()
                r = await client.post("/infer", content=bodies[i % len(bodies)])
                latencies.append(time.perf_counter() - t0)
                statuses.append(r.status_code)
                if r.status_code == 200:
                    assert len(r.json()["latent"]) == 64
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return latencies, statuses


def test_2000_requests_at_concurrency_8(tcn_plan):
    bodies = [httpx.Request("POST", "http://x", json={"x": window(s).tolist()}).read() for s in range(16)]
    server = ServerProcess(str(tcn_plan), "--output-names", "latent", "--queue", str(2 * CLIENTS))
    try:
        latencies, statuses = asyncio.run(drive(server.url, bodies))
        health = httpx.get(server.url + "/healthz").json()
        metrics = httpx.get(server.url + "/metrics").text
    finally:
        code, err = server.stop()
    assert code == 0, err
    assert len(statuses) == REQUESTS
    assert not [s for s in statuses if s >= 500], f"5xx answers: {sorted(set(statuses))}"
    assert statuses.count(200) == REQUESTS
    p50, p95 = np.percentile(np.asarray(latencies) * 1e3, [50, 95])
    print(f"\n{REQUESTS} requests, {CLIENTS} clients: p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
          f"server peak RSS {health['peak_rss_mb']} MB")
    assert p95 < 50.0, f"p95 {p95:.1f} ms over the contract's 50 ms"
    assert health["peak_rss_mb"] < 512
    served = next(float(line.split()[-1]) for line in metrics.splitlines()
                  if line.startswith('hailo_rewriter_requests_total{endpoint="/infer",status="200"}'))
    assert served == REQUESTS
