"""--stub / USE_REAL_MODEL=0: outputs of the plan's shapes, deterministic, without running the plan."""

import httpx
import numpy as np
from sv_helpers import ServerProcess, live_server, window

from runtime.serve.config import ServeConfig
from runtime.serve.service import Service


def test_stub_never_loads_the_plan(tcn_plan):
    def loader(*args):
        raise AssertionError("stub mode must not load the plan")

    service = Service(ServeConfig(plan=tcn_plan, stub=True, stub_reason="--stub", output_names="latent"), loader)
    with live_server(service) as url:
        h = httpx.get(url + "/healthz").json()
        assert h["backend"] == "stub" and "--stub" in h["backend_reason"]
        a = httpx.post(url + "/infer", json={"x": window(1).tolist()}).json()
        b = httpx.post(url + "/encode", json={"x": window(2).tolist()}).json()
        assert a == b and np.shape(a["latent"]) == (64,)
        assert all(0 <= v < 1 for v in a["latent"])
        assert httpx.post(url + "/infer", json={"x": [1, 2]}).status_code == 422  # still validated
        assert 'hailo_rewriter_backend_info{backend="stub",stub="true"} 1.0' in httpx.get(url + "/metrics").text


def test_use_real_model_0_in_a_subprocess(tcn_plan):
    server = ServerProcess(str(tcn_plan), "--output-names", "latent", env={"USE_REAL_MODEL": "0"})
    try:
        h = httpx.get(server.url + "/healthz").json()
        assert h["backend"] == "stub" and "USE_REAL_MODEL=0" in h["backend_reason"]
        first = httpx.post(server.url + "/infer", json={"x": window().tolist()}).json()
    finally:
        code, _ = server.stop()
    assert code == 0
    # deterministic across processes: a second server gives the same stub
    again = ServerProcess(str(tcn_plan), "--output-names", "latent", "--stub")
    try:
        assert httpx.post(again.url + "/infer", json={"x": window(5).tolist()}).json() == first
    finally:
        again.stop()
