"""Every endpoint of a real uvicorn server on 127.0.0.1, called with a real HTTP client, on the plan
of the real TCN encoder; answers checked against onnxruntime on the original model."""

import hashlib
import json

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from sv_helpers import TCN_MODEL, live_server, window

from runtime.parity import normalized
from runtime.serve.config import ServeConfig
from runtime.serve.service import Service

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def server(tcn_plan):
    service = Service(ServeConfig(plan=tcn_plan, output_names="latent", max_body_bytes=LIMIT))
    with live_server(service) as url:
        yield url, service


@pytest.fixture(scope="module")
def reference(tcn_plan):
    session = ort.InferenceSession(str(TCN_MODEL), providers=["CPUExecutionProvider"])
    norm = json.loads((tcn_plan / "plan.json").read_text())["normalization"]
    return lambda x: session.run(None, normalized({"imu_window": x}, norm))[0]


def windows_served(url) -> float:
    text = httpx.get(f"{url}/metrics").text
    return float(
        next(line.split()[-1] for line in text.splitlines() if line.startswith("hailo_rewriter_windows_total"))
    )


@pytest.mark.parametrize("endpoint", ["/infer", "/encode"])
def test_infer_matches_onnxruntime(server, reference, endpoint):
    url, _ = server
    for seed in range(3):
        x = window(seed)
        r = httpx.post(url + endpoint, json={"x": x.tolist()})
        assert r.status_code == 200, r.text
        doc = r.json()
        assert list(doc) == ["latent"] and len(doc["latent"]) == 64
        ref = reference(x[None])[0]
        np.testing.assert_allclose(np.float32(doc["latent"]), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_batched_request_gets_batched_answer(server, reference):
    url, _ = server
    x = window(7)[None]
    doc = httpx.post(url + "/infer", json={"imu_window": x.tolist()}).json()
    assert np.shape(doc["latent"]) == (1, 64)
    np.testing.assert_allclose(np.float32(doc["latent"]), reference(x), rtol=1e-5, atol=1e-5)


def test_healthz(server, tcn_plan):
    url, _ = server
    h = httpx.get(url + "/healthz").json()
    assert h["status"] == "ok" and h["backend"] == "onnxruntime"
    assert "hailo_platform" in h["backend_reason"]  # why hailo was not chosen here
    assert h["plan_sha256"] == hashlib.sha256((tcn_plan / "plan.json").read_bytes()).hexdigest()
    assert h["model"] == TCN_MODEL.name
    assert h["uptime_s"] > 0 and h["last_error"] is None and h["fallback"] == {"active": False, "count": 0}
    assert h["inputs"] == {"x": "[100, 9] or [1, 100, 9]"} and h["outputs"] == {"latent": [1, 64]}
    assert h["peak_rss_mb"] > 0  # of this pytest process here; test_sv_load checks a server's own


def test_metrics_count_requests_errors_and_time(server):
    url, _ = server
    before = windows_served(url)
    assert httpx.post(url + "/infer", json={"x": window().tolist()}).status_code == 200
    assert httpx.post(url + "/infer", content=b"nope").status_code == 422
    text = httpx.get(url + "/metrics").text
    assert windows_served(url) == before + 1
    for needle in (
        'hailo_rewriter_request_seconds_bucket{endpoint="/infer",le="0.05"}',
        'hailo_rewriter_requests_total{endpoint="/infer",status="200"}',
        'hailo_rewriter_requests_total{endpoint="/infer",status="422"}',
        'hailo_rewriter_errors_total{kind="bad_json"}',
        'hailo_rewriter_plan_seconds_total{where="device"}',
        'hailo_rewriter_plan_seconds_total{where="host"}',
        "hailo_rewriter_queue_depth 0.0",
        "hailo_rewriter_fallback_active 0.0",
        'hailo_rewriter_backend_info{backend="onnxruntime",stub="false"} 1.0',
        "process_resident_memory_bytes",
    ):
        assert needle in text, needle
    device = float(
        next(
            line.split()[-1]
            for line in text.splitlines()
            if line.startswith('hailo_rewriter_plan_seconds_total{where="device"}')
        )
    )
    assert device > 0  # the hailo step's engine time (on onnxruntime here) is accounted


def bad_requests(url):
    w = [[0.0] * 9] * 100
    yield "not json", httpx.post(url + "/infer", content=b"{oops"), 422
    yield "array", httpx.post(url + "/infer", json=[1, 2]), 422
    yield "unknown field", httpx.post(url + "/infer", json={"y": w}), 422
    yield "missing field", httpx.post(url + "/infer", json={}), 422
    yield "wrong shape", httpx.post(url + "/infer", json={"x": [[0.0] * 8] * 100}), 422
    yield "batch of 2", httpx.post(url + "/infer", json={"x": [w, w]}), 422
    yield "ragged", httpx.post(url + "/infer", json={"x": w[:-1] + [[0.0]]}), 422
    yield "strings", httpx.post(url + "/infer", json={"x": [["1"] * 9] * 100}), 422
    yield "NaN", httpx.post(url + "/infer", content=json.dumps({"x": w}).replace("0.0", "NaN", 1)), 422
    yield "Infinity", httpx.post(url + "/encode", content=json.dumps({"x": w}).replace("0.0", "-Infinity", 1)), 422
    yield "overflow", httpx.post(url + "/infer", content=json.dumps({"x": w}).replace("0.0", "1e39", 1)), 422
    big = json.dumps({"x": [[1.2345678] * 9] * 100 * 8}).encode()
    yield "too large", httpx.post(url + "/infer", content=big), 413

    def chunks():  # no Content-Length: the limit holds while streaming
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    yield "too large, chunked", httpx.post(url + "/infer", content=chunks()), 413


def test_bad_requests_never_reach_the_plan(server):
    url, _ = server
    before = windows_served(url)
    for what, r, status in bad_requests(url):
        assert r.status_code == status, (what, r.status_code, r.text)
        detail = r.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and detail, what
    assert windows_served(url) == before
    h = httpx.get(url + "/healthz").json()
    assert h["last_error"] is None  # client mistakes are not service errors
    # and the service still answers
    assert httpx.post(url + "/infer", json={"x": window().tolist()}).status_code == 200


def test_unknown_route_and_method(server):
    url, _ = server
    assert httpx.get(url + "/infer").status_code == 405
    assert httpx.get(url + "/nope").status_code == 404
