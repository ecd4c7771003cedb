"""The real TCN encoder fixture: one Hailo segment with all convs, rank 4 throughout."""

import json

import numpy as np
import pytest
from util import TCN_MODEL, assert_hailo_clean, cosine, rewrite_and_run, tensor_ranks


@pytest.fixture(scope="module")
def tcn(tmp_path_factory):
    if not TCN_MODEL.is_file():
        pytest.skip(f"TCN fixture not present at {TCN_MODEL.parent}")
    tmp = tmp_path_factory.mktemp("tcn")
    rng = np.random.default_rng(0)
    feeds = {"imu_window": rng.standard_normal((1, 100, 9)).astype(np.float32)}
    return rewrite_and_run(TCN_MODEL, tmp, feeds=feeds)  # the real hailo8 target


def test_one_hailo_segment_with_all_convs(tcn):
    assert_hailo_clean(tcn)
    assert [s["device"] for s in tcn.doc["steps"]] == ["host", "hailo", "host"]
    ops = tcn.ops("hailo")
    assert ops["Conv"] == 10  # nine Conv1d + the FC head as a 1x1 conv
    assert "Gemm" not in tcn.ops() and "BatchNormalization" not in tcn.ops()
    (seg,) = tcn.hailo
    assert set(tensor_ranks(seg).values()) == {4}


def test_host_holds_only_layout_edges(tcn):
    first, _, last = tcn.doc["steps"]
    assert set(tcn.ops()) - set(tcn.ops("hailo")) <= {"Transpose", "Unsqueeze", "Squeeze"}
    assert {n.op_type for n in tcn.segments[first["name"]].graph.node} <= {"Transpose", "Unsqueeze"}
    assert [n.op_type for n in tcn.segments[last["name"]].graph.node] == ["Squeeze"]


def test_parity_cosine(tcn, tmp_path):
    for name, ref in tcn.ref.items():
        assert cosine(tcn.outputs[name], ref) >= 0.99999


def test_parity_on_realistic_sample(tmp_path):
    if not TCN_MODEL.is_file():
        pytest.skip("TCN fixture not present")
    sample = TCN_MODEL.parent / "realistic_imu_sample.json"
    if not sample.is_file():
        pytest.skip("no realistic_imu_sample.json")
    data = json.loads(sample.read_text())
    arr = None
    for v in data.values() if isinstance(data, dict) else [data]:
        a = np.asarray(v, dtype=np.float32) if isinstance(v, list) else None
        if a is not None and a.size == 900:
            arr = a.reshape(1, 100, 9)
            break
    if arr is None:
        pytest.skip("sample layout not recognized")
    res = rewrite_and_run(TCN_MODEL, tmp_path, feeds={"imu_window": arr})
    assert cosine(res.outputs["latent_embeddings"], res.ref["latent_embeddings"]) >= 0.99999
