"""Hailo fails at run time -> the service reloads the plan on onnxruntime, says so in /healthz and
/metrics, and keeps answering correctly. The device is tests/runtime/hailo_platform_standin.py, a
RECORDING STAND-IN for HailoRT (not Hailo's code), made to fail like a lost device."""

import json
import shutil
import sys

import hailo_platform_standin as hp
import httpx
import numpy as np
import onnxruntime as ort
import pytest
from sv_helpers import TCN_MODEL, live_server, window

from runtime.parity import normalized
from runtime.schema import refresh_files
from runtime.serve.config import ServeConfig
from runtime.serve.service import Service


@pytest.fixture
def hailo_plan(tcn_plan, tmp_path, monkeypatch):
    """The TCN plan with a stand-in HEF for its hailo step, and the stand-in as hailo_platform."""
    out = tmp_path / "tcn.plan"
    shutil.copytree(tcn_plan, out)
    doc = json.loads((out / "plan.json").read_text())
    (step,) = [s for s in doc["steps"] if s["device"] == "hailo"]
    hp.write_hef(out / "segments" / "hailo_0.hef", out / step["model"])
    step["hef"] = "segments/hailo_0.hef"
    refresh_files(doc, out)  # a HEF runs only when plan.json lists its hash
    (out / "plan.json").write_text(json.dumps(doc, indent=1))
    hp.reset()
    monkeypatch.setitem(sys.modules, "hailo_platform", hp)
    yield out
    hp.reset()


def device_lost(monkeypatch):
    def run(self, bindings, timeout_ms):
        hp._record("run", self, len(bindings), timeout_ms)
        raise RuntimeError("standin: HAILO_TIMEOUT(4) device not responding")

    monkeypatch.setattr(hp.ConfiguredInferModel, "run", run)


def expected(plan_dir, x):
    norm = json.loads((plan_dir / "plan.json").read_text())["normalization"]
    s = ort.InferenceSession(str(TCN_MODEL), providers=["CPUExecutionProvider"])
    return s.run(None, normalized({"imu_window": x[None]}, norm))[0][0]


def metric(text, name):
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_hailo_failure_falls_back_to_cpu(hailo_plan, monkeypatch):
    service = Service(ServeConfig(plan=hailo_plan, output_names="latent"))
    with live_server(service) as url:
        h = httpx.get(url + "/healthz").json()
        assert h["backend"] == "hailo" and "4.20.0-standin" in h["backend_reason"]
        runs = len(hp.calls("run"))
        x = window(1)
        r = httpx.post(url + "/infer", json={"x": x.tolist()})
        assert r.status_code == 200 and len(hp.calls("run")) == runs + 1  # went through the device
        np.testing.assert_allclose(np.float32(r.json()["latent"]), expected(hailo_plan, x), rtol=1e-4, atol=1e-5)

        device_lost(monkeypatch)
        for seed in (2, 3):  # the failing request and the next one are both answered from the CPU plan
            x = window(seed)
            r = httpx.post(url + "/infer", json={"x": x.tolist()})
            assert r.status_code == 200, r.text
            np.testing.assert_allclose(np.float32(r.json()["latent"]), expected(hailo_plan, x), rtol=1e-5, atol=1e-5)
        assert len(hp.calls("run")) == runs + 2  # the device was tried once, then left alone

        h = httpx.get(url + "/healthz").json()
        assert h["status"] == "degraded" and h["backend"] == "onnxruntime"
        assert h["fallback"] == {"active": True, "count": 1}
        assert "hailo run failed" in h["backend_reason"] and "HAILO_TIMEOUT" in h["last_error"]["message"]
        text = httpx.get(url + "/metrics").text
        assert metric(text, 'hailo_rewriter_fallbacks_total{backend="hailo"}') == 1
        assert metric(text, "hailo_rewriter_fallback_active") == 1
        assert 'hailo_rewriter_backend_info{backend="onnxruntime",stub="false"} 1.0' in text
        assert 'status="500"' not in text


def test_no_fallback_answers_500_and_records_the_error(hailo_plan, monkeypatch):
    service = Service(ServeConfig(plan=hailo_plan, fallback=False))
    with live_server(service) as url:
        device_lost(monkeypatch)
        r = httpx.post(url + "/infer", json={"x": window().tolist()})
        assert r.status_code == 500 and "inference failed" in r.json()["detail"]
        h = httpx.get(url + "/healthz").json()
        assert h["backend"] == "hailo" and h["fallback"]["count"] == 0
        assert "HAILO_TIMEOUT" in h["last_error"]["message"]
        assert metric(httpx.get(url + "/metrics").text, 'hailo_rewriter_errors_total{kind="plan_error"}') == 1


def test_device_failing_at_warm_up_starts_on_cpu(hailo_plan, monkeypatch):
    device_lost(monkeypatch)
    service = Service(ServeConfig(plan=hailo_plan, output_names="latent"))
    with live_server(service) as url:
        h = httpx.get(url + "/healthz").json()
        assert h["status"] == "degraded" and h["backend"] == "onnxruntime" and h["fallback"]["count"] == 1
        x = window(4)
        r = httpx.post(url + "/infer", json={"x": x.tolist()})
        assert r.status_code == 200
        np.testing.assert_allclose(np.float32(r.json()["latent"]), expected(hailo_plan, x), rtol=1e-5, atol=1e-5)
        assert metric(httpx.get(url + "/metrics").text, 'hailo_rewriter_fallbacks_total{backend="hailo"}') == 1
