"""examples/tcn_vae_motifs.py end to end: checkpoint -> ONNX (cosine gate) -> plan -> check -> bench;
then the plan served answers the sidecar contract {"latent": [64], "motif_scores": [12]}."""

import importlib.util
import json

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from sv_helpers import REPO, live_server

from runtime.serve.config import ServeConfig
from runtime.serve.service import Service

EXAMPLE = REPO / "examples" / "tcn_vae_motifs.py"


@pytest.fixture(scope="module")
def example_out(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("tcn_vae_motifs_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path_factory.mktemp("motifs")
    # timing gates off: on a shared box they measure the neighbours; parity and memory gates stay on
    contract = out / "parity_only.toml"
    contract.write_text("[latency]\np95_ms = 0\n[throughput]\nwindows_per_s = 0\n[runtime]\np95_ratio_vs_onnx = 0\n")
    assert example.main(["--out", str(out), "--requests", "100", "--contract", str(contract)]) == 0
    return out, example


def test_checkpoint_round_trip_and_onnx_outputs(example_out):
    out, example = example_out
    model = example.load_checkpoint(out / "tcn_vae_motifs.pt")
    assert model.config == {"channels": [9, 64, 128, 256], "latent": 64, "motifs": 12}
    session = ort.InferenceSession(str(out / "tcn_vae_motifs.onnx"), providers=["CPUExecutionProvider"])
    assert [(o.name, o.shape) for o in session.get_outputs()] == [("latent", [1, 64]), ("motif_scores", [1, 12])]
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("imu_window", [1, 100, 9])]


def test_served_plan_answers_the_sidecar_contract(example_out):
    out, _ = example_out
    body = (out / "window.json").read_bytes()
    x = np.float32(json.loads(body)["x"])
    session = ort.InferenceSession(str(out / "tcn_vae_motifs.onnx"), providers=["CPUExecutionProvider"])
    latent, scores = session.run(None, {"imu_window": x[None]})
    with live_server(Service(ServeConfig(plan=out / "tcn_vae_motifs.plan"))) as url:
        doc = httpx.post(url + "/infer", content=body).json()
        batched = httpx.post(url + "/encode", json={"x": x[None].tolist()}).json()
        assert httpx.post(url + "/infer", json={"x": x[:50].tolist()}).status_code == 422
    assert list(doc) == ["latent", "motif_scores"]
    assert np.shape(doc["latent"]) == (64,) and np.shape(doc["motif_scores"]) == (12,)
    assert all(0 <= s <= 1 for s in doc["motif_scores"])
    np.testing.assert_allclose(np.float32(doc["latent"]), latent[0], rtol=1e-5, atol=1e-5 * np.abs(latent).max())
    np.testing.assert_allclose(np.float32(doc["motif_scores"]), scores[0], rtol=1e-5, atol=1e-6)
    assert np.shape(batched["latent"]) == (1, 64) and np.shape(batched["motif_scores"]) == (1, 12)
