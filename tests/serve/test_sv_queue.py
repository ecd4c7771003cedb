"""Bounded concurrency: with the worker held and the queue full, the next request is a 503 with
Retry-After at once; held requests are answered when the worker moves on."""

import threading
import time

import httpx
import numpy as np
from sv_helpers import live_server, window

from runtime.serve.config import ServeConfig
from runtime.serve.service import Service, load_plan


class GatedPlan:
    """A real plan whose runs wait for a gate once the test closes it (warm-up runs pass)."""

    def __init__(self, plan, gate: threading.Event):
        self.plan, self.gate = plan, gate
        self.runs = 0

    def __getattr__(self, name):
        return getattr(self.plan, name)

    def run(self, feeds, **kwargs):
        self.gate.wait(30)
        self.runs += 1
        return self.plan.run(feeds, **kwargs)


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_full_queue_answers_503_with_retry_after(tcn_plan):
    gate = threading.Event()
    gate.set()
    plans = []

    def loader(path, backend, threads):
        plans.append(GatedPlan(load_plan(path, backend, threads), gate))
        return plans[-1]

    service = Service(ServeConfig(plan=tcn_plan, queue_size=2, output_names="latent"), loader)
    with live_server(service) as url:
        gate.clear()
        results = {}

        def post(i):
            results[i] = httpx.post(url + "/infer", json={"x": window(i).tolist()}, timeout=60)

        held = [threading.Thread(target=post, args=(i,)) for i in range(3)]  # 1 running + 2 queued
        for t in held:
            t.start()
        wait_for(lambda: service.executor.depth == 3)
        t0 = time.monotonic()
        busy = httpx.post(url + "/infer", json={"x": window(9).tolist()})
        assert time.monotonic() - t0 < 5  # rejected at once, not after the held ones
        assert busy.status_code == 503
        assert int(busy.headers["Retry-After"]) >= 1
        assert "busy" in busy.json()["detail"]
        metrics = httpx.get(url + "/metrics").text
        assert 'hailo_rewriter_errors_total{kind="queue_full"} 1.0' in metrics
        assert "hailo_rewriter_queue_depth 3.0" in metrics
        assert httpx.get(url + "/healthz").json()["queue_depth"] == 3  # health is not queued behind runs

        gate.set()
        for t in held:
            t.join(60)
        assert [results[i].status_code for i in range(3)] == [200, 200, 200]
        runs_before = plans[0].runs
        ok = httpx.post(url + "/infer", json={"x": window(3).tolist()})
        assert ok.status_code == 200 and plans[0].runs == runs_before + 1
        assert np.shape(ok.json()["latent"]) == (64,)
